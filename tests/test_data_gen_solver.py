"""The Countdown solver against an independent brute force, and against the reward (the judge)."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from data_gen.countdown import count_solutions, solve
from tinyzero.rewards import compute_score


def brute_force_expressions(numbers: list[int]) -> dict[str, Fraction]:
    """Every distinct expression over the numbers -> its value, by plain enumeration.

    Picks two operands, combines them with each operation, and recurses, in Fractions. An
    expression is named by its fully parenthesised text, with the operands of + and * sorted,
    so swapped operands of + and * name the same expression (the solver's notion of distinct).
    """
    found: dict[str, Fraction] = {}

    def walk(items: list[tuple[Fraction, str]]) -> None:
        if len(items) == 1:
            found[items[0][1]] = items[0][0]
            return
        for i in range(len(items)):
            for j in range(len(items)):
                if i == j:
                    continue
                (a, a_text), (b, b_text) = items[i], items[j]
                rest = [item for k, item in enumerate(items) if k not in (i, j)]
                combined = [(a - b, f"({a_text}-{b_text})")]
                if b != 0:
                    combined.append((a / b, f"({a_text}/{b_text})"))
                if i < j:
                    low, high = sorted((a_text, b_text))
                    combined += [(a + b, f"({low}+{high})"), (a * b, f"({low}*{high})")]
                for item in combined:
                    walk(rest + [item])

    walk([(Fraction(n), str(n)) for n in numbers])
    return found


def brute_force_count(numbers: list[int], target: int) -> int:
    return sum(value == target for value in brute_force_expressions(numbers).values())


def scores_full_marks(solution: str, numbers: list[int], target: int) -> bool:
    ground_truth = {"target": target, "numbers": numbers}
    return compute_score("countdown", f"<answer>{solution}</answer>", ground_truth)["score"] == 1.0


def random_small_problems(count: int, seed: int = 3):
    rng = random.Random(seed)
    for _ in range(count):
        size = rng.choice([1, 2, 2, 3, 3, 3, 4])
        largest = rng.choice([2, 3, 5, 12, 99])  # small ranges give duplicates, zeros, collisions
        yield [rng.randint(1, largest) for _ in range(size)], rng.randint(-6, 40)


@pytest.mark.parametrize("numbers,target", list(random_small_problems(220)))
def test_solver_agrees_with_brute_force(numbers, target):
    expected = brute_force_count(numbers, target)
    assert count_solutions(numbers, target) == expected
    solution = solve(numbers, target)
    assert (solution is not None) == (expected > 0)
    if solution is not None:
        assert scores_full_marks(solution, numbers, target), solution


@pytest.mark.parametrize("numbers,target", [([1, 2, 3, 4, 5], 7), ([2, 2, 3, 3, 7], 1), ([1, 1, 2, 6, 9], -3)])
def test_five_numbers_agree_with_brute_force(numbers, target):
    # Five numbers take the solver's deepest path: two levels answered goal-first.
    assert count_solutions(numbers, target) == brute_force_count(numbers, target)


def test_solution_count_definition():
    # 1+2+3 grouped 3 ways, 1*2*3 grouped 3 ways, 2*3/1, (2/1)*3, (3/1)*2, 3/(1/2), 2/(1/3).
    assert count_solutions([1, 2, 3], 6) == 11
    # Equal numbers are interchangeable: 5+5 is one expression, not two.
    assert count_solutions([5, 5], 10) == 1
    assert count_solutions([2, 2], 4) == 2  # 2+2 and 2*2


@pytest.mark.parametrize("numbers,target", [([1, 5, 5, 5], 24), ([3, 3, 8, 8], 24), ([1, 3, 4, 6], 24)])
def test_needs_fractional_intermediates(numbers, target):
    # Each is reachable only through a non-integer intermediate value (e.g. 8 / (3 - 8/3)).
    solution = solve(numbers, target)
    assert solution is not None and scores_full_marks(solution, numbers, target)
    assert count_solutions(numbers, target) == brute_force_count(numbers, target)


def test_unsolvable_and_zero_division():
    assert solve([1, 1], 100) is None and count_solutions([1, 1], 100) == 0
    # 1 / (1 - 1) is not a value: nothing reaches a target through dividing by zero.
    assert count_solutions([1, 1, 1], 3) == brute_force_count([1, 1, 1], 3)


def test_six_numbers_and_large_values():
    numbers = [25, 50, 75, 100, 3, 6]
    solution = solve(numbers, 952)
    assert solution is not None and scores_full_marks(solution, numbers, 952)
    big = [99, 98, 97, 96, 95, 94]
    product = 99 * 98 * 97 * 96 * 95 * 94
    assert scores_full_marks(solve(big, product), big, product)
    assert count_solutions([10_000, 9_999], 2) == 0 and count_solutions([10_000, 9_999], 19_999) == 1


@pytest.mark.parametrize("numbers", [[0, 3], [3, -1], [], [1] * 7])
def test_rejects_what_is_not_a_countdown_problem(numbers):
    with pytest.raises(ValueError, match="Countdown"):
        solve(numbers, 3)


def test_accepts_numpy_integers_as_parquet_readers_give_them():
    np = pytest.importorskip("numpy")
    assert solve(np.array([3, 3, 8, 8]), np.int64(24)) == solve([3, 3, 8, 8], 24)
    assert count_solutions(np.array([1, 2, 3]), np.int64(6)) == 11
    with pytest.raises(ValueError, match="integer"):
        solve([2, 3], 5.5)

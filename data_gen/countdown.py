"""Countdown: reach a target by combining given numbers with + - * /, each number used once.

`CountdownConfig` holds every knob (the CLI's options are derived from its fields, recipes set
the same fields). Every problem is solvable under the reward's rules and carries one solution;
its difficulty is its number of distinct solutions (`count_solutions`, see data_gen.solver).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import ClassVar

from data_gen.config import PRIMING_RESERVE_HELP, check_between, check_choice, check_integers, check_sizes, drawn, field_help
from data_gen.prompts import PROMPT_STYLES, chat_prompt, countdown_question
from data_gen.solver import MAX_NUMBERS, Solver, count_solutions, join_expression, modulus_for, solve
from data_gen.tasks import TaskSpec, register
from tinyzero.rewards import score_countdown
from tinyzero.rewards.score import GROUND_TRUTH_FIELDS

__all__ = ["DIFFICULTY_SPLITS", "TARGET_MODES", "CountdownConfig", "count_solutions", "solve"]

TARGET_MODES = ("uniform", "expression")
DIFFICULTY_SPLITS = ("all", "test", "none")

# A uniform target keeps its draw while fresh numbers are tried, so that targets stay uniform; a
# target no draw of numbers reaches this many times running is replaced (only rare, hard-to-reach
# targets are affected).
_NUMBER_DRAWS_PER_TARGET = 100
# Problems per chunk: the unit of parallel work, each with its own random stream.
CHUNK_SIZE = 4096
# A chunk gives up after this many draws of numbers in a row without a new problem: the config
# has (nearly) run out of distinct problems. Legitimate configs succeed every few hundred draws.
_DRAWS_WITHOUT_NEW_PROBLEM = 20_000
# Counting every solvable problem exactly is affordable when its estimated cost (ms) is below this.
_EXACT_COUNT_BUDGET_MS = 3000
_SOLVER_COST_MS = {2: 0.02, 3: 0.1, 4: 2.0, 5: 60.0, 6: 3000.0}  # full tables, measured (loaded machine)


@dataclass
class CountdownConfig:
    """Countdown problems: how many, which numbers, which targets, and how they are drawn."""

    task: ClassVar[str] = "countdown"
    chunk_size: ClassVar[int | None] = CHUNK_SIZE

    # Sizes of the classic TinyZero set, so the defaults reproduce its scale.
    train_size: int = field(default=327_680, metadata=field_help("problems in train.parquet"))
    test_size: int = field(default=1_024, metadata=field_help("problems in test.parquet (drawn first, so it does not depend on train_size)"))
    priming_reserve: int = field(default=0, metadata=field_help(PRIMING_RESERVE_HELP))
    seed: int = field(default=0, metadata=field_help("random seed: same config and seed give byte-identical files"))
    # 3 or 4 numbers up to 99 and targets up to 100 resemble the classic Countdown-Tasks-3to4 set.
    min_count: int = field(default=3, metadata=field_help(f"fewest numbers in a problem (2 to {MAX_NUMBERS})"))
    max_count: int = field(default=4, metadata=field_help(f"most numbers in a problem (2 to {MAX_NUMBERS})"))
    min_number: int = field(default=1, metadata=field_help("smallest number (at least 1)"))
    max_number: int = field(default=99, metadata=field_help("largest number (at most 10000)"))
    min_target: int = field(default=1, metadata=field_help("smallest target"))
    max_target: int = field(default=100, metadata=field_help("largest target (|target| at most 10**9)"))
    # Expression targets are values of random expressions over the numbers (as the classic set),
    # fast to make; uniform targets cover the range exactly evenly but cost a solver call per
    # draw of numbers, about ten times slower.
    target_mode: str = field(default="expression", metadata=field_help("how targets are drawn", choices=TARGET_MODES))
    # Counting solutions costs more than generating a problem: by default only the test split,
    # where evaluation breaks accuracy down by difficulty, is counted.
    difficulty: str = field(default="test", metadata=field_help("which splits get each problem's solution count as its difficulty; the others store null", choices=DIFFICULTY_SPLITS))
    prompt_style: str = field(default="base", metadata=field_help("prompt for a base model (plain text ending in <think>), chat messages for an instruct model, or compact text for a model trained from scratch", choices=PROMPT_STYLES))

    def validate(self) -> None:
        """Raise ValueError naming the first bad field, with its value and what to do instead."""
        check_integers(self, ("train_size", "test_size", "priming_reserve", "seed", "min_count", "max_count", "min_number", "max_number", "min_target", "max_target"))
        check_sizes(self)
        check_between(self, ("min_count", "max_count"), 2, MAX_NUMBERS)
        if self.min_count > self.max_count:
            raise ValueError(f"min_count ({self.min_count}) is above max_count ({self.max_count}): the range of counts is empty")
        if self.min_number < 1:
            raise ValueError(f"min_number must be at least 1 (Countdown numbers are positive), got {self.min_number}")
        if self.max_number > 10_000:
            raise ValueError(f"max_number must be at most 10000, got {self.max_number}")
        if self.min_number > self.max_number:
            raise ValueError(f"min_number ({self.min_number}) is above max_number ({self.max_number}): the range of numbers is empty")
        for name in ("min_target", "max_target"):
            if abs(getattr(self, name)) > 10**9:
                raise ValueError(f"{name} must be within -10**9..10**9, got {getattr(self, name)}")
        if self.min_target > self.max_target:
            raise ValueError(f"min_target ({self.min_target}) is above max_target ({self.max_target}): the range of targets is empty")
        check_choice(self, "target_mode", TARGET_MODES)
        check_choice(self, "difficulty", DIFFICULTY_SPLITS)
        check_choice(self, "prompt_style", PROMPT_STYLES)
        bound = self.problem_bound()
        total, fields = drawn(self)
        if total > bound:
            raise ValueError(
                f"{fields} = {total} but this config has at most {bound} "
                "distinct problems (number multisets x targets): ask for fewer or widen the number or target ranges"
            )

    # -- how many distinct problems exist ---------------------------------------------------------

    def _multisets(self, count: int) -> int:
        return math.comb(self.max_number - self.min_number + count, count)

    def problem_bound(self) -> int:
        """An upper bound on distinct problems: every multiset of numbers with every target."""
        multisets = sum(self._multisets(n) for n in range(self.min_count, self.max_count + 1))
        return multisets * (self.max_target - self.min_target + 1)

    def exact_count_affordable(self) -> bool:
        cost = sum(self._multisets(n) * _SOLVER_COST_MS[n] for n in range(self.min_count, self.max_count + 1))
        return cost <= _EXACT_COUNT_BUDGET_MS

    def distinct_problems(self) -> int:
        """The exact number of distinct solvable problems (only for small configs: see exact_count_affordable)."""
        modulus = self.modulus()
        total = 0
        for n in range(self.min_count, self.max_count + 1):
            for numbers in _multisets_of(n, self.min_number, self.max_number):
                solver = Solver(numbers, modulus, table_size=n)
                total += len(solver.reachable_integers(self.min_target, self.max_target))
        return total

    def check_capacity(self) -> None:
        """Fail before any work when more problems are asked than exist (exact when affordable)."""
        self.validate()
        if self.exact_count_affordable():
            available = self.distinct_problems()
            total, fields = drawn(self)
            if total > available:
                raise ValueError(
                    f"{fields} = {total} but this config has only "
                    f"{available} distinct solvable problems: ask for fewer or widen the number or target ranges"
                )

    def space_note(self) -> dict | None:
        """How much of the config's space of distinct solvable problems a request uses (exact
        counts only, for small configs), with a warning past half: the test split, drawn first,
        then takes the problems the generator finds most easily and the train split the rest, so
        the two splits no longer share one mix of problems."""
        if not self.exact_count_affordable():
            return None
        available = self.distinct_problems()
        asked, fields = drawn(self)
        note = {"distinct_problems": available, "share_used": round(asked / available, 4)}
        if asked > available / 2:
            note["warning"] = (
                f"{fields} = {asked} uses {asked / available:.0%} of the {available} distinct problems "
                "this config allows: past half, the test split (drawn first) and the train split differ in mix; "
                "ask for at most half or widen the number or target ranges"
            )
        return note

    def modulus(self) -> int:
        return modulus_for(self.max_count, self.max_number, max(abs(self.min_target), abs(self.max_target)))

    # -- generation --------------------------------------------------------------------------------

    def generate_chunk(self, chunk: int, size: int, seen: set | None = None) -> list[tuple]:
        """Up to `size` distinct problems (numbers, target, solution, None) from chunk `chunk`'s stream.

        Fewer come back only when the draw budget runs out, which happens when the config has
        (nearly) no more distinct solvable problems to give. `seen` holds problem keys to avoid
        (it is added to). Difficulty is filled in later, for the splits that want it.
        """
        # A string seed is hashed with SHA-512 by `random`: the same stream whatever PYTHONHASHSEED.
        rng = random.Random(f"countdown/{self.seed}/{chunk}")
        draw = self._draw_uniform if self.target_mode == "uniform" else self._draw_expression
        modulus = self.modulus()
        seen = set() if seen is None else seen
        problems: list[tuple] = []
        budget = [_DRAWS_WITHOUT_NEW_PROBLEM]  # draws of numbers left, shared with `draw`
        count = None
        while len(problems) < size and budget[0] > 0:
            # How many numbers is drawn once per problem and kept through retries, so that every
            # count is equally common whatever its success rate.
            if count is None:
                count = rng.randint(self.min_count, self.max_count)
            drawn = draw(rng, count, modulus, seen, budget)
            if drawn is not None:
                count = None
                budget[0] = _DRAWS_WITHOUT_NEW_PROBLEM
                numbers, target, solution = drawn
                problem = (tuple(numbers), target, solution, None)
                seen.add(self.key(problem))
                problems.append(problem)
        return problems

    def _draw_uniform(self, rng: random.Random, count: int, modulus: int, seen: set, budget: list[int]):
        """A uniform target, then numbers drawn until the target is reachable (and the problem new)."""
        target = rng.randint(self.min_target, self.max_target)
        for _ in range(_NUMBER_DRAWS_PER_TARGET):
            budget[0] -= 1
            numbers = [rng.randint(self.min_number, self.max_number) for _ in range(count)]
            if (tuple(sorted(numbers)), target) in seen:
                continue
            solution = Solver(numbers, modulus).find(target)
            if solution is not None:
                return numbers, target, solution
        return None

    def _draw_expression(self, rng: random.Random, count: int, modulus: int, seen: set, budget: list[int]):
        """Numbers and a random expression over them, whose value is the target.

        Operands are merged in a random order with random operations; the last operation is
        drawn among those that make the value an integer in the target range (none: draw again).
        Choosing only the last one keeps the expression random while wasting far fewer draws.
        """
        budget[0] -= 1
        # int(random() * k): one C call per choice, several times cheaper than randrange. Its
        # bias (k / 2**53) is far below anything a dataset of millions could show.
        random_ = rng.random
        low, span = self.min_number, self.max_number - self.min_number + 1
        numbers = [low + int(random_() * span) for _ in range(count)]
        # Values are exact fractions as unreduced (numerator, denominator) pairs, the cheapest
        # exact form; the text is only written for an accepted draw.
        values = [(n, 1) for n in numbers]
        steps = []
        while len(values) > 2:
            i = int(random_() * len(values))
            a, b = values.pop(i)
            j = int(random_() * len(values))
            c, d = values.pop(j)
            op = int(random_() * 4)
            if op == 0:
                values.append((a * d + c * b, b * d))
            elif op == 1:
                values.append((a * d - c * b, b * d))
            elif op == 2:
                values.append((a * c, b * d))
            elif c:
                values.append((a * d, b * c))
            else:
                return None  # division by zero
            steps.append((i, j, "+-*/"[op]))
        i = int(random_() * 2)
        (a, b), (c, d) = values[i], values[1 - i]
        finals = []
        for op, (numerator, denominator) in zip("+-*/", ((a * d + c * b, b * d), (a * d - c * b, b * d), (a * c, b * d), (a * d, b * c))):
            if denominator and not numerator % denominator:
                target = numerator // denominator
                if self.min_target <= target <= self.max_target and (tuple(sorted(numbers)), target) not in seen:
                    finals.append((op, target))
        if not finals:
            return None
        op, target = finals[int(random_() * len(finals))]
        steps.append((i, 0, op))
        # Replay the same merges on the texts.
        texts = [(str(n), 3) for n in numbers]
        for i, j, op in steps:
            left = texts.pop(i)
            right = texts.pop(j)
            texts.append(join_expression(left, op, right))
        return numbers, target, texts[0][0]

    def difficulty_splits(self) -> tuple[str, ...]:
        return {"all": ("train", "test"), "test": ("test",), "none": ()}[self.difficulty]

    def with_difficulty(self, problems: list[tuple]) -> list[tuple]:
        """The problems with their difficulty: the number of distinct solutions."""
        modulus = self.modulus()
        return [(numbers, target, solution, Solver(numbers, modulus).count(target))
                for numbers, target, solution, _ in problems]

    # -- rows ----------------------------------------------------------------------------------------

    def table(self, problems: list[tuple], split: str, first_index: int = 0):
        return countdown_table(problems, split, self.prompt_style, first_index)

    @staticmethod
    def key(problem: tuple) -> tuple:
        """What makes two problems the same: the numbers as a multiset and the target."""
        return tuple(sorted(problem[0])), problem[1]

    @staticmethod
    def summary(problems: list[tuple]) -> dict:
        from data_gen.dataset import histogram, numeric_summary

        return {
            "num_count": histogram(len(p[0]) for p in problems),
            "target": numeric_summary([p[1] for p in problems]),
            "difficulty": numeric_summary([p[3] for p in problems if p[3] is not None]),
            "operations": operation_mix(problems),
        }


def operation_mix(problems: list[tuple]) -> dict[str, float]:
    """The share of each operation among the stored solutions' operations: two splits with
    different mixes reward different habits (a policy that always adds scores the share of +)."""
    counts = {op: 0 for op in "+-*/"}
    for problem in problems:
        for op in counts:
            counts[op] += problem[2].count(f" {op} ")
    total = sum(counts.values()) or 1
    return {op: round(count / total, 4) for op, count in counts.items()}


def countdown_table(problems: list[tuple], split: str, prompt_style: str, first_index: int = 0):
    """verl's rows for one split of (numbers, target, solution, difficulty) problems."""
    import pyarrow as pa

    from data_gen.dataset import int_lists, verl_table

    numbers = [list(p[0]) for p in problems]
    targets = [p[1] for p in problems]
    return verl_table(
        "countdown",
        (chat_prompt(countdown_question(n, t, prompt_style), prompt_style) for n, t in zip(numbers, targets)),
        ground_truth=dict(zip(GROUND_TRUTH_FIELDS["countdown"], (pa.array(targets, pa.int64()), int_lists(numbers)))),
        extra_info={
            "split": pa.array([split] * len(problems), pa.string()),
            "index": pa.array(range(first_index, first_index + len(problems)), pa.int64()),
            "solution": pa.array([p[2] for p in problems], pa.string()),
            "difficulty": pa.array([p[3] for p in problems], pa.int64()),
            "prompt_style": pa.array([prompt_style] * len(problems), pa.string()),
            "num_count": pa.array([len(n) for n in numbers], pa.int64()),
        },
    )


def _multisets_of(count: int, low: int, high: int):
    """Every multiset of `count` numbers in [low, high], as sorted tuples, in order."""
    if count == 0:
        yield ()
        return
    for first in range(low, high + 1):
        for rest in _multisets_of(count - 1, first, high):
            yield (first,) + rest


def countdown_difficulty(ground_truth: dict) -> str:
    """Eval's breakdown: how many numbers the problem gives."""
    return f"{len(ground_truth[GROUND_TRUTH_FIELDS['countdown'][1]])} numbers"


COUNTDOWN = register(
    TaskSpec(
        name=CountdownConfig.task,
        config=CountdownConfig,
        question=countdown_question,
        ground_truth_fields=GROUND_TRUTH_FIELDS["countdown"],
        difficulty=countdown_difficulty,
        reward=score_countdown,
    )
)

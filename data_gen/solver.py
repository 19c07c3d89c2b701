"""Exact Countdown solver: find one expression for a target, or count all of them.

Rules (the same as tinyzero.rewards): every given number is used exactly once, the operations are
binary + - * /, there is no unary minus, intermediate values may be any rationals, and dividing by
zero is invalid.

How it is fast. A value is any rational an expression over a sub-multiset of the numbers can
take. Rationals are costly in Python, so a value is kept as its residue modulo a Mersenne prime P
chosen large enough that two different values (or a value and a wanted value) never share a
residue: every value here is p/q with |p|, q <= H, and two such values with equal residues would
satisfy p1*q2 - p2*q1 = 0 mod P with |p1*q2 - p2*q1| < P, so they are equal (see `modulus_for`).
Residue arithmetic is plain integer arithmetic, about 20 times faster than `fractions.Fraction`.

Sub-multisets (not positions: two equal numbers are interchangeable) of up to n-2 numbers get a
table: the value of each of their expressions, and how many expressions take each value. Larger
ones are asked goal-first: "which values of the other side make this side's value, with op,
equal to the goal?" is a table look-up, so the two largest levels cost look-ups instead of
combining every pair of values.

What `count` counts: expression trees whose leaves are the given numbers (equal numbers are
interchangeable) and whose inner nodes are + - * /, where swapping the two operands of + or * gives
the same expression. Regrouping is not merged: (a + b) + c and a + (b + c) count twice. The
count is the task's difficulty measure: the fewer expressions reach the target, the harder.
"""

from __future__ import annotations

import functools
import operator
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat

# Exponents of Mersenne primes: residue arithmetic modulo 2**e - 1.
_MERSENNE_EXPONENTS = (61, 89, 107, 127, 521, 607, 1279, 2203, 2281, 3217, 4253, 4423)

# Operator precedence, for writing expressions with only the parentheses they need.
_ADD, _MUL, _ATOM = 1, 2, 3

MAX_NUMBERS = 6


def modulus_for(count: int, largest_number: int, largest_target: int) -> int:
    """A prime P for which residues of distinct relevant rationals never collide.

    An expression over k numbers of size at most M has height (max of |numerator|, denominator)
    at most 2**(k-1) * M**k: + and - at most double the product of the operands' heights, * and /
    do not exceed it. A wanted value derived from a target T by k such steps has height at most
    T * (2M)**k. Comparing two values of heights h1, h2 needs P > 2*h1*h2, and T * (2M)**(2n) * 4
    bounds every comparison the solver makes.
    """
    largest_number, largest_target = operator.index(largest_number), operator.index(largest_target)
    bound = 4 * max(abs(largest_target), 1) * (2 * max(largest_number, 1)) ** (2 * count)
    for exponent in _MERSENNE_EXPONENTS:
        modulus = (1 << exponent) - 1
        if modulus > bound:
            return modulus
    raise ValueError(f"numbers up to {largest_number} and targets up to {largest_target} are too large for the solver")


# Modular inverses are the costly step (a few microseconds each); the same small rationals come
# back problem after problem, so they are remembered per modulus, within a size bound.
_INVERSES: dict[int, dict[int, int]] = {}
_INVERSE_CACHE_LIMIT = 1 << 20


def _inverse_table(modulus: int) -> dict[int, int]:
    table = _INVERSES.get(modulus)
    if table is None or len(table) > _INVERSE_CACHE_LIMIT:
        table = _INVERSES[modulus] = {}
    return table


# Tables of single numbers and pairs, shared by every solver with the same modulus (bounded).
_SHARED_TABLE_SIZE = 2
_SMALL_TABLES: dict[int, dict[tuple[int, ...], tuple]] = {}
_SMALL_TABLE_LIMIT = 1 << 18


def _small_tables(modulus: int) -> dict[tuple[int, ...], tuple]:
    tables = _SMALL_TABLES.get(modulus)
    if tables is None or len(tables) > _SMALL_TABLE_LIMIT:
        tables = _SMALL_TABLES[modulus] = {}
    return tables


@dataclass(frozen=True)
class _Structure:
    """The sub-multisets of a sorted multiset with a given run pattern, and how each splits in two.

    Positions hold the sorted numbers; a sub-multiset is named by its canonical mask, which takes
    the first positions of each run of equal numbers. `splits[mask]` lists each unordered split
    {small, big} once, small being the side with fewer numbers, and whether both sides are equal
    multisets (then the operands of + and * come from the same pool: counted once per pair).
    """

    masks: tuple[int, ...]  # canonical masks, by size then mask
    sizes: dict[int, int]
    splits: dict[int, tuple[tuple[int, int, bool], ...]]


@functools.lru_cache(maxsize=None)
def _structure(run_lengths: tuple[int, ...]) -> _Structure:
    starts = [sum(run_lengths[:i]) for i in range(len(run_lengths))]

    def mask_of(counts: tuple[int, ...]) -> int:
        mask = 0
        for start, count in zip(starts, counts):
            mask |= ((1 << count) - 1) << start
        return mask

    vectors = [()]
    for length in run_lengths:
        vectors = [v + (c,) for v in vectors for c in range(length + 1)]
    vectors = [v for v in vectors if any(v)]
    order = sorted(vectors, key=lambda v: (sum(v), mask_of(v)))
    masks = tuple(mask_of(v) for v in order)
    sizes = {mask_of(v): sum(v) for v in order}
    splits = {}
    for whole in order:
        pairs = []
        for part in order:
            if part == whole or any(p > w for p, w in zip(part, whole)):
                continue
            rest = tuple(w - p for w, p in zip(whole, part))
            part_key, rest_key = (sum(part), mask_of(part)), (sum(rest), mask_of(rest))
            if part_key <= rest_key:
                pairs.append((mask_of(part), mask_of(rest), part == rest))
        splits[mask_of(whole)] = tuple(pairs)
    return _Structure(masks, sizes, splits)


def join_expression(left: tuple[str, int], op: str, right: tuple[str, int]) -> tuple[str, int]:
    """Write `left op right` with only the parentheses needed to keep its value."""
    left_text, left_prec = left
    right_text, right_prec = right
    if op in "*/" and left_prec == _ADD:
        left_text = f"({left_text})"
    if (op == "-" and right_prec == _ADD) or (op == "*" and right_prec == _ADD) or (op == "/" and right_prec != _ATOM):
        right_text = f"({right_text})"
    return f"{left_text} {op} {right_text}", (_ADD if op in "+-" else _MUL)


class Solver:
    """Expression tables for one multiset of numbers; answers `count(target)` and `find(target)`.

    Build once per multiset and ask about as many targets as needed. `table_size` is how many
    numbers the largest tabled sub-multiset may hold (default n - 2; n tables the whole
    multiset, which `reachable_integers` needs).

    A tabled sub-multiset keeps the list of its expressions' values (one residue per distinct
    expression, so equal values repeat) and a Counter of it. Larger ones are only asked "how
    many expressions have a value in this list of goals", which turns into goal lists for the
    smaller side of each split: everything runs in list comprehensions and C-level look-ups.
    """

    def __init__(self, numbers: Sequence[int], modulus: int, table_size: int | None = None):
        try:
            values = sorted(operator.index(n) for n in numbers)
        except TypeError:
            raise ValueError(f"Countdown numbers must be integers, got {list(numbers)}") from None
        if not 1 <= len(values) <= MAX_NUMBERS:
            raise ValueError(f"a Countdown problem has 1 to {MAX_NUMBERS} numbers, got {len(values)}: {list(numbers)}")
        if values[0] < 1:
            raise ValueError(f"Countdown numbers must be positive integers, got {list(numbers)}")
        runs: list[int] = []
        for i, value in enumerate(values):
            if i and value == values[i - 1]:
                runs[-1] += 1
            else:
                runs.append(1)
        self.values = values
        self.modulus = modulus
        # The largest |target| this modulus keeps collision-free for these numbers.
        self.target_limit = (modulus - 1) // (4 * (2 * values[-1]) ** (2 * len(values)))
        if self.target_limit < 1:
            raise ValueError(f"modulus too small for numbers {values}; get one from modulus_for()")
        self.structure = _structure(tuple(runs))
        self.full = (1 << len(values)) - 1
        self._inverses = _inverse_table(modulus)
        self.lists: dict[int, list[int]] = {}
        self.tables: dict[int, Counter] = {}
        self._nonzero: dict[int, list[tuple[int, int]]] = {}  # (value, inverse) of nonzero values
        self._target_counts: dict[int, int] = {}
        limit = max(1, len(values) - 2) if table_size is None else table_size
        small_tables = _small_tables(modulus)
        for mask in self.structure.masks:
            size = self.structure.sizes[mask]
            if size > limit:
                break
            if size <= _SHARED_TABLE_SIZE:  # the same few numbers recur across problems: share
                key = tuple(v for i, v in enumerate(values) if mask >> i & 1)
                entry = small_tables.get(key)
                if entry is None:
                    built = self._build(mask)
                    entry = small_tables[key] = (built, Counter(built), self._with_inverses(built))
                self.lists[mask], self.tables[mask], self._nonzero[mask] = entry
            else:
                built = self._build(mask)
                self.lists[mask], self.tables[mask] = built, Counter(built)

    def _with_inverses(self, residues) -> list[tuple[int, int]]:
        """(residue, inverse) for each nonzero residue, in order."""
        cache = self._inverses
        for r in set(residues).difference(cache):
            if r:
                cache[r] = pow(r, -1, self.modulus)
        return [(r, cache[r]) for r in residues if r]

    def _nonzero_of(self, mask: int) -> list[tuple[int, int]]:
        """(value, inverse) of the nonzero values of a tabled sub-multiset, worked out when first
        needed: the largest tabled level is only ever looked up, and its thousands of inverses
        would cost more than everything else."""
        nonzero = self._nonzero.get(mask)
        if nonzero is None:
            nonzero = self._nonzero[mask] = self._with_inverses(self.lists[mask])
        return nonzero

    def _goal(self, target: int) -> int:
        try:
            target = operator.index(target)  # a Python int, also from numpy
        except TypeError:
            raise ValueError(f"a Countdown target must be an integer, got {target!r}") from None
        if abs(target) > self.target_limit:
            raise ValueError(f"target {target} is beyond what this solver's modulus supports; build it with modulus_for(..., largest_target={target})")
        return target % self.modulus

    # -- tables -----------------------------------------------------------------------------

    def _build(self, mask: int) -> list[int]:
        """The value of every distinct expression over the sub-multiset `mask`."""
        if self.structure.sizes[mask] == 1:
            return [self.values[mask.bit_length() - 1] % self.modulus]
        P = self.modulus
        out: list[int] = []
        for small, big, same in self.structure.splits[mask]:
            A, A_nonzero = self.lists[small], self._nonzero_of(small)
            if not same:
                B, B_nonzero = self.lists[big], self._nonzero_of(big)
                out += [(a + b) % P for a in A for b in B]
                out += [a * b % P for a in A for b in B]
                out += [(a - b) % P for a in A for b in B]
                out += [(b - a) % P for a in A for b in B]
                out += [a * b_inverse % P for a in A for _, b_inverse in B_nonzero]  # a / b
                out += [b * a_inverse % P for _, a_inverse in A_nonzero for b in B]  # b / a
            else:
                # Both operands from one pool: + and * once per unordered pair of expressions
                # (an expression may pair with itself), - and / once per ordered pair.
                for i, a in enumerate(A):
                    rest = A[i:]
                    out += [(a + b) % P for b in rest]
                    out += [a * b % P for b in rest]
                out += [(a - b) % P for a in A for b in A]
                out += [a * b_inverse % P for a in A for _, b_inverse in A_nonzero]
        return out

    # -- counting -----------------------------------------------------------------------------

    def _count_goals(self, mask: int, goals: list[int]) -> int:
        """How many (expression over `mask`, goal) pairs have the expression's value equal the goal."""
        table = self.tables.get(mask)
        if table is not None:
            return sum(map(table.get, goals, repeat(0)))
        goals_nonzero = self._with_inverses(goals)
        return sum(self._count_split(split, goals, goals_nonzero) for split in self.structure.splits[mask])

    def _count_split(self, split: tuple[int, int, bool], goals: list[int], goals_nonzero: list[tuple[int, int]]) -> int:
        """The expressions `small op big` (or `big op small`) worth a goal, summed over the goals."""
        small, big, same = split
        P = self.modulus
        goal_zeros = len(goals) - len(goals_nonzero)
        A, A_nonzero = self.lists[small], self._nonzero_of(small)
        if len(A) == 1 and not same:
            # One number a (never 0): all six goals for x in one pass, the common case.
            a, a_inverse = A_nonzero[0]
            wanted = [x for g, g_inverse in goals_nonzero for x in (
                (a - g) % P, a * g_inverse % P, (g + a) % P, g * a % P, (g - a) % P, g * a_inverse % P)]
            if goal_zeros:  # a - x = 0, x - a = 0, x / a = 0, a + x = 0, a * x = 0
                wanted += [a, a, 0, (-a) % P, 0] * goal_zeros
            return self._count_goals(big, wanted)
        A_zeros = len(A) - len(A_nonzero)
        # Goals for the other side's value x: x must make a op x (or x op a) equal to g.
        wanted = [(a - g) % P for g in goals for a in A]  # a - x = g
        wanted += [a * g_inverse % P for _, g_inverse in goals_nonzero for a, _ in A_nonzero]  # a / x = g
        commuted = [(g - a) % P for g in goals for a in A]  # a + x = g
        commuted += [g * a_inverse % P for g in goals for _, a_inverse in A_nonzero]  # a * x = g
        if not same:
            wanted += [(g + a) % P for g in goals for a in A]  # x - a = g
            wanted += [g * a % P for g in goals for a, _ in A_nonzero]  # x / a = g
            wanted += commuted
        count = self._count_goals(big, wanted)
        zero_products = 0
        if A_zeros and goal_zeros:
            # 0 * x = 0 for every x, 0 / x = 0 for every x != 0. A zero needs two or more
            # numbers, so the other side has at most n - 2 and is tabled.
            B, B_table = self.lists[big], self.tables[big]
            count += A_zeros * goal_zeros * (len(B) - B_table.get(0, 0))
            zero_products = A_zeros * goal_zeros * len(B)
            if not same:
                count += zero_products
        if same:
            # Ordered pairs of expressions from one pool count {e, f} twice and {e, e} once:
            # add the diagonal and halve.
            table = self.tables[small]
            half = (P + 1) // 2
            diagonal = sum(table.get(g * half % P, 0) for g in goals)  # e + e = g
            goal_counts = Counter(goals)
            diagonal += sum(goal_counts.get(a * a % P, 0) for a in A)  # e * e = g
            ordered = self._count_goals(big, commuted) + zero_products
            count += (ordered + diagonal) // 2
        return count

    def count(self, target: int) -> int:
        """Number of distinct expressions (see the module docstring) equal to `target`."""
        return self._count_target(self._goal(target))

    def _count_target(self, goal: int) -> int:
        count = self._target_counts.get(goal)
        if count is None:  # find() and count() of one target share the work
            count = self._target_counts[goal] = self._count_goals(self.full, [goal])
        return count

    # -- finding --------------------------------------------------------------------------------

    def _has(self, mask: int, goal: int) -> bool:
        table = self.tables.get(mask)
        return table.get(goal, 0) > 0 if table is not None else self._count_goals(mask, [goal]) > 0

    def _find(self, mask: int, goal: int) -> tuple[str, int] | None:
        """An expression over `mask` with value `goal` as (text, precedence), or None."""
        table = self.tables.get(mask)
        if table is not None:
            if not table.get(goal):
                return None
            if self.structure.sizes[mask] == 1:
                return str(self.values[mask.bit_length() - 1]), _ATOM
        P = self.modulus
        goals_nonzero = self._with_inverses([goal])
        goal_inverse = goals_nonzero[0][1] if goal else None
        for split in self.structure.splits[mask]:
            # The counts say which split holds a solution; only there are operands looked for.
            if table is None and not self._count_split(split, [goal], goals_nonzero):
                continue
            small, big, _same = split
            big_table = self.tables.get(big)
            small_values = self._with_inverses(list(self.tables[small]))
            if 0 in self.tables[small]:
                small_values.append((0, None))
            for a, a_inverse in small_values:
                # (x, a is the left operand, op): what the other side must be worth.
                candidates = [((goal - a) % P, True, "+"), ((a - goal) % P, True, "-"), ((goal + a) % P, False, "-")]
                if a:
                    candidates += [(goal * a_inverse % P, True, "*"), (goal * a % P, False, "/")]
                    if goal:
                        candidates.append((a * goal_inverse % P, True, "/"))
                elif not goal:  # 0 * x and 0 / x are 0 for any x (x != 0 to divide)
                    candidates.append((next(iter(big_table)), True, "*"))
                    nonzero = next((x for x in big_table if x), None)
                    if nonzero is not None:
                        candidates.append((nonzero, True, "/"))
                for x, a_is_left, op in candidates:
                    if not self._has(big, x):
                        continue
                    big_text = self._find(big, x)
                    small_text = self._find(small, a)
                    if a_is_left:
                        return join_expression(small_text, op, big_text)
                    return join_expression(big_text, op, small_text)
        return None

    def find(self, target: int) -> str | None:
        """One expression equal to `target`, or None when there is none."""
        goal = self._goal(target)
        if not self._count_target(goal):  # counting is vectorised: cheaper than searching
            return None
        found = self._find(self.full, goal)
        return None if found is None else found[0]

    def reachable_integers(self, low: int, high: int) -> list[int]:
        """Integers in [low, high] that some expression reaches (needs table_size = n).

        A residue r stands for the integer r or r - P when that lies in the range; the modulus
        must then have been chosen with the range's largest magnitude as its target bound.
        """
        self._goal(low), self._goal(high)  # both ends within the collision-free bound
        P = self.modulus
        found = set()
        for r in self.tables[self.full]:
            for value in (r, r - P):
                if low <= value <= high:
                    found.add(value)
        return sorted(found)


def solver_for(numbers: Sequence[int], target: int) -> Solver:
    """A solver for one problem, its modulus fitted to these numbers and this target."""
    numbers = list(numbers)
    try:
        return Solver(numbers, modulus_for(len(numbers), max(numbers, default=1), target))
    except TypeError:
        raise ValueError(f"a Countdown problem needs integer numbers and target, got {numbers} and {target!r}") from None


def solve(numbers: Sequence[int], target: int) -> str | None:
    """One expression that uses every number once and equals `target`, or None if none exists."""
    return solver_for(numbers, target).find(target)


def count_solutions(numbers: Sequence[int], target: int) -> int:
    """How many distinct expressions equal `target` (see the module docstring for "distinct")."""
    return solver_for(numbers, target).count(target)

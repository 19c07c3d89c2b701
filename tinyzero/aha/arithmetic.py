"""The arithmetic a response states, found in its text and recomputed exactly.

Models write their working as chains such as ``55 + 36 = 91``, ``100 - 9 - 12 = 81`` or
``5 * 6 is 30``. `stated_equations` finds those chains, evaluates every side exactly with the
reward's own Countdown evaluator (`tinyzero.rewards.evaluate_expression`: fractions, no `eval`),
and records whether the chain holds.
The detectors use this to see recomputations, slips, and attempts that miss the target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from tinyzero.rewards import evaluate_expression

# One token of written arithmetic. Words that models use for "=" count as "=", and "x", "×", "÷",
# "−", "times", "divided by"... as operators, so "84 divided by 6 is 14" reads as "84 / 6 = 14".
_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<num>\d+)"
    r"|(?P<op>[-+*/×÷−–·]|(?:x|times|plus|minus|divided by|multiplied by)(?=\s*[\d(]))"
    r"|(?P<lp>\()"
    r"|(?P<rp>\))"
    r"|(?P<eq>=|(?:is|equals|gives|makes|yields)\b(?=\s*[\d(]))"
    r")",
    re.IGNORECASE,
)
_OPS = {
    "×": "*", "·": "*", "x": "*", "times": "*", "multiplied by": "*", "÷": "/", "divided by": "/",
    "plus": "+", "−": "-", "–": "-", "minus": "-",
}
# Where a chain may start: a number or an opening bracket, not inside a word ("Step1", "h2o").
_START = re.compile(r"(?<![\w.])(?:\(\s*)*\d")
# A chain right after an operator continues an earlier value: "55 + 36 is 91, minus 19 is 72"
# means 91 - 19 = 72. Read alone, "19 is 72" would look false.
_CONTINUATION = re.compile(
    r"(?:[-+*/×÷−–·)]|\b(?:minus|plus|times|divided by|multiplied by|x))\s*$", re.IGNORECASE
)
_CONTINUES_LAST = re.compile(
    r"[\s,.;:]*(?:and |then |and then )?(?P<op>[-+*/×÷−–·]|minus|plus|times|divided by|multiplied by|x)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Equation:
    """A chain of equal-signed sides stated in the text, e.g. ``70 + 27 - 2 = 105 - 2 = 103``."""

    start: int  # character offsets of the chain in the text
    end: int
    sides: tuple[str, ...]  # each side as written, operators normalised
    values: tuple[Fraction, ...]  # exact value of each side
    numbers: tuple[tuple[int, ...], ...]  # the integers each side uses

    @property
    def holds(self) -> bool:
        """True when every side has the same value (the stated arithmetic is right)."""
        return all(v == self.values[0] for v in self.values[1:])

    @property
    def is_equation(self) -> bool:
        return len(self.sides) > 1

    @property
    def value(self) -> Fraction:
        """Value of the first side: what the written computation really comes to."""
        return self.values[0]

    @property
    def result(self) -> Fraction:
        """Value of the last side: what the text claims the computation comes to."""
        return self.values[-1]

    def has_operator(self, side: int = 0) -> bool:
        return len(self.numbers[side]) > 1


def _tokens_from(text: str, pos: int) -> tuple[list[tuple[str, str, int]], int]:
    """Longest run of arithmetic tokens starting at pos: [(kind, text, end_offset)], run end."""
    tokens: list[tuple[str, str, int]] = []
    while True:
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        kind = m.lastgroup
        raw = m.group(kind)
        tokens.append((kind, "=" if kind == "eq" else _OPS.get(raw.lower(), raw), m.end()))
        pos = m.end()
    return tokens, pos


def _balance(side: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """Drop brackets that belong to the surrounding prose: "(12 - 9 = 3)" has sides "12 - 9", "3"."""
    while side and side[0][0] == "lp" and sum(t[0] == "lp" for t in side) > sum(t[0] == "rp" for t in side):
        side = side[1:]
    while side and side[-1][0] == "rp" and sum(t[0] == "rp" for t in side) > sum(t[0] == "lp" for t in side):
        side = side[:-1]
    # A trailing operator belongs to prose ("91 - 19 = 72 -"): drop it.
    while side and side[-1][0] == "op":
        side = side[:-1]
    return side


def _readable_start(side: list[tuple[str, str, int]], whole: bool = False):
    """The longest start of a side that evaluates (the whole side only, if `whole`): (its tokens,
    its text, (value, numbers)), or None."""
    for count in range(len(side), 0 if not whole else len(side) - 1, -1):
        text = " ".join(v for _, v, _ in side[:count])
        evaluated = evaluate_expression(text)
        if evaluated is not None:
            return side[:count], text, evaluated
    return None


def apply_operator(left: Fraction, op: str, right: Fraction) -> Fraction:
    """`left op right`, exactly, for op one of + - * /."""
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    return left * right if op == "*" else left / right


def stated_equations(text: str) -> list[Equation]:
    """Every arithmetic chain stated in text, in order: expressions alone have one side."""
    found: list[Equation] = []
    pos = 0
    while m := _START.search(text, pos):
        carried: tuple[Fraction, str] | None = None  # (earlier result, operator) it continues
        if _CONTINUATION.search(text, max(0, m.start() - 16), m.start()):
            gap = _CONTINUES_LAST.fullmatch(text, found[-1].end, m.start()) if found else None
            if gap is None:  # continues something unreadable, e.g. "(95 - 3)(95 + 3)"
                pos = m.end()
                continue
            carried = (found[-1].result, _OPS.get(gap.group("op").lower(), gap.group("op").lower()))
        tokens, _ = _tokens_from(text, m.start())
        sides: list[list[tuple[str, str, int]]] = [[]]
        for tok in tokens:
            if tok[0] == "eq":
                sides.append([])
            else:
                sides[-1].append(tok)
        sides_text, values, numbers = [], [], []
        end = m.start()
        for side in sides:
            side = _balance(side)
            # A stated result may run on into prose ("512 * 8 is 4096 (500 * 8 = ..."): the chain
            # ends with its readable start. The first side must read whole ("(95 - 3)(95 + 3)" does not).
            readable = _readable_start(side, whole=not values)
            if readable is None:
                break
            used, side_text, evaluated = readable
            sides_text.append(side_text)
            values.append(evaluated[0])
            numbers.append(tuple(evaluated[1]))
            end = used[-1][2]
            if len(used) < len(side):
                break
        if not values:
            pos = m.end()  # "9 (12 - 9 = 3)": retry from the next possible start
            continue
        pos = end
        if carried is not None:
            earlier, op = carried
            if op == "/" and values[0] == 0:
                continue
            sides_text[0] = f"{earlier} {op} ({sides_text[0]})"
            values[0] = apply_operator(earlier, op, values[0])
        equation = Equation(m.start(), end, tuple(sides_text), tuple(values), tuple(numbers))
        if equation.is_equation or equation.has_operator():  # a lone number states nothing
            found.append(equation)
    return found

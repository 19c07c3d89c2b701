"""Countdown: combine the given numbers with + - * / to hit the target.

The answer is parsed and evaluated in one pass with an explicit stack: no eval, no recursion
(10,000 nested parentheses cannot exhaust the stack), exact rational arithmetic on ints.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from fractions import Fraction
from operator import index

from tinyzero.rewards.answer import (
    ASCII_SPACE,
    CORRECT_SCORE,
    FORMAT_SCORE,
    MAX_ANSWER_CHARS,
    NO_ANSWER_SCORE,
    ScoreResult,
    check_options,
    judge_response,
    make_result,
    short_repr,
)

# Anything outside the grammar's alphabet: letters, `.`, `%`, `^`, `_`, non-ASCII digits, ...
_FOREIGN_CHAR = re.compile(r"[^0-9+\-*/×÷() \t\n\r\f\v]")
_SPACED_SYMBOLS = tuple((symbol, f" {symbol} ") for symbol in "()+-*/")


def _sum(add_op, total_n, total_d, term_n, term_d) -> tuple[int, int]:
    """total (+ or -) term, on unreduced fractions; just the term when there is no total yet."""
    if add_op is None:
        return term_n, term_d
    if total_d == term_d:  # the common case: both integers (denominators 1)
        return (total_n + term_n if add_op == "+" else total_n - term_n), total_d
    cross = total_n * term_d + term_n * total_d if add_op == "+" else total_n * term_d - term_n * total_d
    return cross, total_d * term_d


def _evaluate(expression: str, max_literals: int):
    """((numerator, denominator), literals) of a valid expression, else (None, why it is not one).

    One pass, no recursion: each parenthesis level is a sum of terms, each term a product, held
    in (total, add_op, term, mul_op); `(` pushes that state on a list, `)` pops it. Values are
    exact unreduced fractions of two ints (the denominator is never 0, its sign is free):
    much cheaper than fractions.Fraction, which takes a gcd after every step. `max_literals`
    stops when more literals appear than there are numbers to use, which bounds the size of
    the arithmetic on any answer by the size of the puzzle.
    """
    foreign = _FOREIGN_CHAR.search(expression)
    if foreign is not None:
        return None, ("character {!r} is not allowed in an expression", foreign.group())
    frames = []
    literals = []
    total_n = total_d = term_n = term_d = 1
    add_op = mul_op = None
    expect_operand = True
    # Tokens: space out the symbols and split, several times faster than a tokenizing regex.
    if not expression.isascii():
        expression = expression.replace("×", "*").replace("÷", "/")
    for symbol, spaced in _SPACED_SYMBOLS:
        expression = expression.replace(symbol, spaced)
    for token in expression.split():
        if expect_operand:
            # Tokens hold only grammar characters, and ASCII puts the digits after ( ) * + - /
            if token >= "0":
                # `07` is not how the number 7 is written: the classic eval-based scorer and
                # reasoning-gym reject it too (Python's grammar has no leading zeros).
                if token[0] == "0" and len(token) > 1:
                    return None, ("the literal {!r} has a leading zero", token[:40])
                try:
                    value_n = int(token)
                except ValueError:  # more digits than int() accepts (4,300)
                    return None, ("a literal of {} digits is too long", len(token))
                value_d = 1
            elif token == "(":
                frames.append((total_n, total_d, add_op, term_n, term_d, mul_op))
                add_op = mul_op = None
                continue
            else:
                return None, ("expected a number or '(' but found {!r}", token)
            literals.append(value_n)
            if len(literals) > max_literals:
                return None, ("uses more than the {} given numbers", max_literals)
        elif token == "+" or token == "-":
            if add_op is None:
                total_n, total_d = term_n, term_d
            else:
                total_n, total_d = _sum(add_op, total_n, total_d, term_n, term_d)
            add_op = token
            expect_operand = True
            continue
        elif token == "*" or token == "/":
            mul_op = token
            expect_operand = True
            continue
        elif token == ")":
            if not frames:
                return None, "unbalanced ')'"
            value_n, value_d = _sum(add_op, total_n, total_d, term_n, term_d)
            total_n, total_d, add_op, term_n, term_d, mul_op = frames.pop()
        else:
            return None, ("expected an operator or ')' but found {!r}", token)
        # The next operand (a literal or a closed parenthesis) joins the term being built.
        if mul_op is None:
            term_n, term_d = value_n, value_d
        elif mul_op == "*":
            term_n *= value_n
            term_d *= value_d
        elif value_n == 0:
            return None, "division by zero"
        else:
            term_n *= value_d
            term_d *= value_n
        mul_op = None
        expect_operand = False
    if expect_operand:
        return None, "expression ends without a number" if literals else "empty expression"
    if frames:
        return None, "unbalanced '('"
    return _sum(add_op, total_n, total_d, term_n, term_d), literals


class _Ratio:
    """An exact value shown as a reduced fraction, built only if a reason is read."""

    __slots__ = ("numerator", "denominator")

    def __init__(self, numerator: int, denominator: int):
        self.numerator, self.denominator = numerator, denominator

    def __str__(self) -> str:
        return str(Fraction(self.numerator, self.denominator))


def evaluate_expression(text: str, max_chars: int = MAX_ANSWER_CHARS) -> tuple[Fraction, list[int]] | None:
    """Exact value and literals (in order) of a Countdown expression, or None if it is not one.

    Grammar: ASCII integer literals without leading zeros (`0` itself is one), binary + - * /
    (× ÷ accepted), parentheses, white space. Division by zero, unary signs, `**`, decimals,
    `07` and anything longer than `max_chars` give None.
    Never raises on a string.
    """
    if not isinstance(text, str) or len(text) > max_chars:
        return None
    value, literals = _evaluate(text, len(text))
    if value is None:
        return None
    return Fraction(*value), literals


def judge_countdown_answer(answer: str, target: int, numbers: list[int], allow_unused_numbers: bool):
    """None if `answer` is a correct solution, else the reason it is not (see `explain`).

    `numbers` must be sorted.
    """
    expression, equals, stated = answer.partition("=")
    if equals:
        stated = stated.strip(ASCII_SPACE)
        # `= N` may close the answer only when N is the target itself (which may be negative).
        digits = stated[1:] if stated[:1] == "-" else stated
        if not (digits.isascii() and digits.isdigit()):
            return ("after '=' expected the target {}, found {!r}", target, stated[:40])
        if int(stated) != target:
            return ("states '= {}' but the target is {}", stated, target)
    value, literals = _evaluate(expression, len(numbers))
    if value is None:
        return literals  # the reason
    literals.sort()
    if literals != numbers:
        if not allow_unused_numbers:
            return ("uses the numbers {}, not exactly {}", literals, numbers)
        if Counter(literals) - Counter(numbers):
            return ("uses the numbers {}, not each at most once from {}", literals, numbers)
    numerator, denominator = value
    if numerator != target * denominator:
        return ("evaluates to {}, not the target {}", _Ratio(numerator, denominator), target)
    return None


_NUMBERS_MUST_BE = "Countdown numbers must be a list, tuple or array of integers"


def countdown_ground_truth(target, numbers) -> tuple[int, list[int]]:
    """Target and sorted numbers as Python ints; numpy ints and arrays accepted (via operator.index).

    Refused, naming the field: bools (True is not the integer 1 here), a set or dict of numbers
    (a set drops repeats: {3, 3, 8, 8} is {3, 8}), negative or no numbers (no answer can use them:
    the grammar has no unary minus). The target may be negative (1 - 5 reaches -4).
    """
    if isinstance(target, bool):
        raise TypeError(f"Countdown target must be an integer, got the bool {target!r}")
    try:
        target = index(target)
    except TypeError:
        raise TypeError(f"Countdown target must be an integer, got {short_repr(target)}") from None
    if type(numbers) is not list:
        if isinstance(numbers, (AbstractSet, Mapping)):
            raise TypeError(
                f"{_NUMBERS_MUST_BE}, got the {type(numbers).__name__} {short_repr(numbers)}: it would drop "
                "repeated numbers; give them as a list"
            )
        try:
            numbers = list(numbers)  # a tuple, an array or an iterator: read once
        except TypeError:
            raise TypeError(f"{_NUMBERS_MUST_BE}, got {short_repr(numbers)}") from None
    try:
        sorted_numbers = sorted(map(index, numbers))
    except TypeError:
        raise TypeError(f"{_NUMBERS_MUST_BE}, got {short_repr(numbers)}") from None
    if not sorted_numbers:
        raise ValueError("Countdown numbers are empty: a problem needs at least one number")
    if sorted_numbers[0] <= 1:  # a bool reads as 0 or 1: look for one only then (the hot path)
        if bool in map(type, numbers):
            raise TypeError(f"{_NUMBERS_MUST_BE}, got bools in {short_repr(numbers)}")
        if sorted_numbers[0] < 0:
            raise ValueError(
                f"Countdown numbers must not be negative, got {sorted_numbers[0]} in {short_repr(numbers)}: "
                "no answer can write it (the grammar has no unary minus)"
            )
    return target, sorted_numbers


def judge_countdown(response, target, numbers, allow_unused_numbers: bool):
    """(has_answer, reason) for one Countdown response (see `judge_response`); reason None: correct."""
    target, numbers = countdown_ground_truth(target, numbers)
    return judge_response(response, judge_countdown_answer, target, numbers, allow_unused_numbers)


def score_countdown(
    response: str,
    target: int,
    numbers,
    *,
    allow_unused_numbers: bool = False,
    no_answer_score: float = NO_ANSWER_SCORE,
    format_score: float = FORMAT_SCORE,
    correct_score: float = CORRECT_SCORE,
) -> ScoreResult:
    """Score one Countdown response and say why.

    Correct: the last <answer> holds an expression using exactly the given numbers (each at
    most once with `allow_unused_numbers`) whose exact value is `target`, optionally followed
    by `= target`.
    """
    check_options(no_answer_score, format_score, correct_score, allow_unused_numbers)
    has_answer, reason = judge_countdown(response, target, numbers, allow_unused_numbers)
    return make_result(response, has_answer, reason, no_answer_score, format_score, correct_score)

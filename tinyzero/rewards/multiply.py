"""Multiplication: the answer is the exact product, written as an integer."""

from __future__ import annotations

import math
import re
from operator import index

from tinyzero.rewards.answer import (
    ASCII_SPACE,
    CORRECT_SCORE,
    FORMAT_SCORE,
    NO_ANSWER_SCORE,
    ScoreResult,
    check_options,
    judge_response,
    make_result,
    short_repr,
)

# ASCII digits, optionally grouped in threes with commas (123,456). Nothing else: no sign,
# no `_`, no decimal point. Deterministic pattern, so matching is linear.
_INTEGER = re.compile(r"[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+")


def judge_multiply_answer(answer: str, product: int):
    """None if `answer` states `product`, else the reason it does not (see `explain`)."""
    written = answer.strip(ASCII_SPACE)
    if _INTEGER.fullmatch(written) is None:
        return ("{!r} is not an integer in ASCII digits (optionally comma-grouped in threes)", written[:40])
    # The answer is at most 1,000 characters, well under int()'s 4,300-digit limit.
    if int(written.replace(",", "")) != product:
        return ("{} is not the product {}", written, product)
    return None


def multiply_ground_truth(product, factors=None) -> int:
    """The product as a Python int (numpy ints accepted, via operator.index), checked against its
    factors when they are given. Refused: bools (True is not the integer 1 here) and a negative
    product (the answer is written without a sign, so none could state it)."""
    try:
        if isinstance(product, bool):
            raise TypeError
        product = index(product)
    except TypeError:
        raise TypeError(f"the product must be an integer, got {type(product).__name__} {short_repr(product)}") from None
    if product < 0:
        raise ValueError(f"the product must not be negative, got {product}: an answer is written without a sign")
    if factors is not None:
        try:
            made = math.prod(map(index, factors))
        except TypeError:  # not iterable, or an item that is not an integer
            made = None
        if made is None or bool in map(type, factors):
            raise TypeError(f"the factors must be a list of integers, got {short_repr(factors)}")
        if made != product:
            raise ValueError(f"the factors {list(map(int, factors))} multiply to {made}, not the product {product}")
    return product


def judge_multiply(response, product, factors=None):
    """(has_answer, reason) for one multiplication response (see `judge_response`); reason None: correct."""
    return judge_response(response, judge_multiply_answer, multiply_ground_truth(product, factors))


def score_multiply(
    response: str,
    product: int,
    *,
    no_answer_score: float = NO_ANSWER_SCORE,
    format_score: float = FORMAT_SCORE,
    correct_score: float = CORRECT_SCORE,
) -> ScoreResult:
    """Score one multiplication response and say why."""
    check_options(no_answer_score, format_score, correct_score)
    has_answer, reason = judge_multiply(response, product)
    return make_result(response, has_answer, reason, no_answer_score, format_score, correct_score)

"""Multiplication: the answer is the exact product, written as an integer."""

from __future__ import annotations

import re
from operator import index

from tinyzero.rewards.answer import (
    ASCII_SPACE,
    CORRECT_SCORE,
    FORMAT_SCORE,
    NO_ANSWER_SCORE,
    ScoreResult,
    judge_response,
    make_result,
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


def multiply_ground_truth(product) -> int:
    """The product as a Python int; numpy ints accepted (via operator.index)."""
    try:
        return index(product)
    except TypeError:
        raise TypeError(f"the product must be an integer, got {product!r}") from None


def judge_multiply(response, product):
    """(has_answer, reason) for one multiplication response (see `judge_response`); reason None: correct."""
    return judge_response(response, judge_multiply_answer, multiply_ground_truth(product))


def score_multiply(
    response: str,
    product: int,
    *,
    no_answer_score: float = NO_ANSWER_SCORE,
    format_score: float = FORMAT_SCORE,
    correct_score: float = CORRECT_SCORE,
) -> ScoreResult:
    """Score one multiplication response and say why."""
    has_answer, reason = judge_multiply(response, product)
    return make_result(response, has_answer, reason, no_answer_score, format_score, correct_score)

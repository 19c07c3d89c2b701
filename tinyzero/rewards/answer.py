"""What every task shares: finding the answer in a response, the three score levels, the result."""

from __future__ import annotations

import math
from numbers import Real
from typing import NamedTuple

ANSWER_OPEN = "<answer>"
ANSWER_CLOSE = "</answer>"
# The reasoning tags the prompts ask for (the reward does not read them; prompts, eval's budget
# forcing and the aha analysis do): one home beside the answer tags.
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# An answer longer than this (white space around it not counted) is wrong without being parsed:
# real answers are a few dozen characters, and the cap bounds the work any response can cost.
MAX_ANSWER_CHARS = 1000

# White space the grammars accept: ASCII only, like the digits.
ASCII_SPACE = " \t\n\r\f\v"

NO_ANSWER_SCORE = 0.0  # no complete <answer>...</answer> pair
FORMAT_SCORE = 0.1  # a pair is present, whatever it holds
CORRECT_SCORE = 1.0  # the answer is right


class ScoreResult(NamedTuple):
    """A score and why: what a person debugging a reward wants to see."""

    score: float
    correct: bool
    has_answer: bool
    reason: str
    answer: str | None = None  # the extracted answer (white space stripped), None if there was none


def find_answer_span(response: str) -> tuple[int, int] | None:
    """(start, end) of the content of the last complete <answer>...</answer> pair, or None.

    str.rfind keeps this linear and free of regex backtracking on megabyte responses.
    """
    close = response.rfind(ANSWER_CLOSE)
    if close < 0:
        return None
    open_ = response.rfind(ANSWER_OPEN, 0, close)
    if open_ < 0:
        return None
    return open_ + len(ANSWER_OPEN), close


def not_text(response) -> TypeError:
    """The one rule for a response that is not a str (bytes, None, a number, a list), in every
    scorer and the TRL adapter: a TypeError naming its type. Scoring it "no answer" would hide the
    bug upstream (bytes holding a correct answer scored 0)."""
    hint = "; decode it first" if isinstance(response, (bytes, bytearray)) else ""
    return TypeError(f"the response must be a str, got {type(response).__name__} {short_repr(response)}{hint}")


def short_repr(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def extract_answer(response: str) -> str | None:
    """Content of the last complete <answer>...</answer> pair (white space stripped), or None.

    The pair may span lines. A response that is not a str raises TypeError (`not_text`).
    """
    if not isinstance(response, str):
        raise not_text(response)
    span = find_answer_span(response)
    if span is None:
        return None
    return response[span[0] : span[1]].strip()


NO_ANSWER = "no complete <answer>...</answer> pair"
TOO_LONG = f"answer longer than {MAX_ANSWER_CHARS} characters, not parsed"


def judge_response(response, judge_answer, *args):
    """(has_answer, reason): reason is None when the answer is correct, else why not (`explain`).

    `judge_answer(answer_text, *args)` is the task's rule; it sees at most MAX_ANSWER_CHARS, not
    counting the ASCII white space around the answer (models pad answers with newlines).
    """
    if not isinstance(response, str):
        raise not_text(response)
    span = find_answer_span(response)
    if span is None:
        return False, NO_ANSWER
    start, end = span
    if end - start <= MAX_ANSWER_CHARS:  # the common case: no copy beyond the answer itself
        return True, judge_answer(response[start:end], *args)
    answer = response[start:end].strip(ASCII_SPACE)
    if len(answer) > MAX_ANSWER_CHARS:
        return True, TOO_LONG
    return True, judge_answer(answer, *args)


def explain(reason) -> str:
    """A reason as text. Judges give a string or a lazy (template, *values) tuple, formatted only
    when someone reads it, which keeps the hot scoring path cheap."""
    return reason if isinstance(reason, str) else reason[0].format(*reason[1:])


def check_options(no_answer_score, format_score, correct_score, allow_unused_numbers=False) -> None:
    """Raise, naming the option, unless the three score levels are finite numbers with
    no_answer <= format < correct (a wrong answer must never earn what a right one does, nor a
    missing answer more than a wrong one) and allow_unused_numbers is a bool (the string "false"
    is true to Python). The defaults pass at the cost of four identity tests: the hot path."""
    if (no_answer_score is NO_ANSWER_SCORE and format_score is FORMAT_SCORE and correct_score is CORRECT_SCORE
            and allow_unused_numbers is False):
        return
    if allow_unused_numbers is not True and allow_unused_numbers is not False:
        raise TypeError(f"allow_unused_numbers={short_repr(allow_unused_numbers)}: must be True or False, "
                        f"got {type(allow_unused_numbers).__name__}")
    for name, value in (("no_answer_score", no_answer_score), ("format_score", format_score),
                        ("correct_score", correct_score)):
        if type(value) is not float and (isinstance(value, bool) or not isinstance(value, Real)):
            raise TypeError(f"{name}={short_repr(value)}: must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise ValueError(f"{name}={value!r}: must be a finite number")
    if format_score >= correct_score:
        raise ValueError(
            f"format_score={format_score!r} must be below correct_score={correct_score!r}: otherwise a "
            "wrong answer scores as much as a right one"
        )
    if no_answer_score > format_score:
        raise ValueError(
            f"no_answer_score={no_answer_score!r} must not exceed format_score={format_score!r}: otherwise "
            "writing no answer pays more than a wrong one"
        )


def did_you_mean(name: str, known) -> str:
    """' (did you mean 'x'?)' for a misspelt keyword, or ''."""
    from difflib import get_close_matches  # only on the error path

    close = get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def score_of(has_answer: bool, reason, no_answer_score, format_score, correct_score) -> float:
    """The score level a verdict earns."""
    if reason is None:
        return float(correct_score)
    return float(format_score) if has_answer else float(no_answer_score)


def make_result(response, has_answer, reason, no_answer_score, format_score, correct_score) -> ScoreResult:
    """A verdict from `judge_response`, spelled out for a person."""
    return ScoreResult(
        score=score_of(has_answer, reason, no_answer_score, format_score, correct_score),
        correct=reason is None,
        has_answer=has_answer,
        reason="correct" if reason is None else explain(reason),
        answer=extract_answer(response),
    )

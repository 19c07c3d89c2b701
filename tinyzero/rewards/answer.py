"""What every task shares: finding the answer in a response, the three score levels, the result."""

from __future__ import annotations

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


def extract_answer(response: str) -> str | None:
    """Content of the last complete <answer>...</answer> pair (white space stripped), or None.

    The pair may span lines. Non-string input has no answer.
    """
    if not isinstance(response, str):
        return None
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
        return False, NO_ANSWER
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

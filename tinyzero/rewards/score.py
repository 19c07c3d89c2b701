"""The one entry point for all tasks: verl's custom reward signature."""

from __future__ import annotations

from tinyzero.rewards.answer import CORRECT_SCORE, FORMAT_SCORE, NO_ANSWER_SCORE, score_of
from tinyzero.rewards.countdown import judge_countdown
from tinyzero.rewards.multiply import judge_multiply

TASKS = ("countdown", "multiply")


def task_of(data_source: str) -> str:
    """The task a data_source names: exactly, or by containing one task name (`countdown_3to4`)."""
    if not isinstance(data_source, str):
        raise ValueError(f"data_source must be a string naming one of {TASKS}, got {data_source!r}")
    if data_source in TASKS:
        return data_source
    matches = [name for name in TASKS if name in data_source]
    if len(matches) != 1:
        raise ValueError(
            f"unknown data_source {data_source!r}: expected one of {TASKS} or a name containing "
            f"exactly one of them (e.g. 'countdown_3to4', 'yolo/multiply-3_digit')"
        )
    return matches[0]


def _missing_field(task: str, fields: str, ground_truth) -> ValueError:
    example = (
        "{'target': 24, 'numbers': [2, 3, 4]}" if task == "countdown" else "{'product': 56088, 'factors': [123, 456]}"
    )
    return ValueError(f"{task} ground_truth needs {fields}, like {example}; got {ground_truth!r}")


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth,
    extra_info=None,
    *,
    no_answer_score: float = NO_ANSWER_SCORE,
    format_score: float = FORMAT_SCORE,
    correct_score: float = CORRECT_SCORE,
    allow_unused_numbers: bool = False,
    **kwargs,
) -> dict[str, float]:
    """Score one response; verl's `reward.custom_reward_function` signature.

    Returns `{"score", "acc", "has_answer"}` as floats for every sample, so verl logs accuracy
    and format rate. Countdown ground truth: `{"target": int, "numbers": [int, ...]}`;
    multiplication: `{"product": int, "factors": [a, b]}` or a bare int. The score levels and
    `allow_unused_numbers` (Countdown: each number at most once) can be set from verl with
    `reward.custom_reward_function.reward_kwargs`. Other keyword arguments are ignored.
    """
    task = task_of(data_source)
    if task == "countdown":
        try:
            target, numbers = ground_truth["target"], ground_truth["numbers"]
        except (KeyError, TypeError, IndexError):
            raise _missing_field(task, "'target' and 'numbers'", ground_truth) from None
        has_answer, reason = judge_countdown(solution_str, target, numbers, allow_unused_numbers)
    else:
        if isinstance(ground_truth, dict):
            try:
                ground_truth = ground_truth["product"]
            except KeyError:
                raise _missing_field(task, "'product'", ground_truth) from None
        has_answer, reason = judge_multiply(solution_str, ground_truth)
    return {
        "score": score_of(has_answer, reason, no_answer_score, format_score, correct_score),
        "acc": 1.0 if reason is None else 0.0,
        "has_answer": 1.0 if has_answer else 0.0,
    }

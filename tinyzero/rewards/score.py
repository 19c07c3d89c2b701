"""The one entry point for all tasks: verl's custom reward signature."""

from __future__ import annotations

from tinyzero.rewards.answer import (
    CORRECT_SCORE,
    FORMAT_SCORE,
    NO_ANSWER_SCORE,
    check_options,
    did_you_mean,
    score_of,
)
from tinyzero.rewards.countdown import judge_countdown
from tinyzero.rewards.multiply import judge_multiply

TASKS = ("countdown", "multiply")

# The ground truth of each task, as data_gen writes it in `reward_model.ground_truth` and as eval
# and aha read it: the field the answer must reach first, then the inputs. The one definition of
# these shapes (rewards import nothing, so every stage may import them from here).
GROUND_TRUTH_FIELDS = {"countdown": ("target", "numbers"), "multiply": ("product", "factors")}
GROUND_TRUTH_EXAMPLES = {"countdown": {"target": 24, "numbers": [2, 3, 4]}, "multiply": {"product": 56088, "factors": [123, 456]}}


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
    return ValueError(f"{task} ground_truth needs {fields}, like {GROUND_TRUTH_EXAMPLES[task]}; got {ground_truth!r}")


# The options compute_score takes, by name; anything else is refused (a typo in verl's
# reward_kwargs would otherwise score with the default, silently).
SCORE_LEVELS = ("no_answer_score", "format_score", "correct_score")
OPTIONS = (*SCORE_LEVELS, "allow_unused_numbers")


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
    # verl adds these two to data_source, solution_str, ground_truth and extra_info when a reward
    # model serves the reward (verl 0.9.1 experimental/reward_loop/reward_manager/naive.py lines
    # 58-65; dapo, gdpo, limited and remote alike): accepted, unused.
    reward_router_address=None,
    reward_model_tokenizer=None,
    **unknown,
) -> dict[str, float]:
    """Score one response; verl's `reward.custom_reward_function` signature.

    Returns `{"score", "acc", "has_answer"}` as floats for every sample, so verl logs accuracy
    and format rate. Countdown ground truth: `{"target": int, "numbers": [int, ...]}`;
    multiplication: `{"product": int, "factors": [a, b]}` or a bare int. The score levels and
    `allow_unused_numbers` (Countdown: each number at most once) can be set from verl with
    `reward.custom_reward_function.reward_kwargs`; they are checked (`check_options`), and
    an unknown keyword is a TypeError naming it. `solution_str` must be a str (TypeError).
    """
    if unknown:
        names = ", ".join(f"{name!r}{did_you_mean(name, OPTIONS)}" for name in sorted(unknown))
        raise TypeError(
            f"compute_score got unknown keyword(s) {names}: its options are {', '.join(OPTIONS)} "
            "(from verl: reward.custom_reward_function.reward_kwargs)"
        )
    check_options(no_answer_score, format_score, correct_score, allow_unused_numbers)
    task = task_of(data_source)
    if task == "countdown":
        target_key, numbers_key = GROUND_TRUTH_FIELDS[task]
        try:
            target, numbers = ground_truth[target_key], ground_truth[numbers_key]
        except (KeyError, TypeError, IndexError):
            raise _missing_field(task, f"{target_key!r} and {numbers_key!r}", ground_truth) from None
        has_answer, reason = judge_countdown(solution_str, target, numbers, allow_unused_numbers)
    else:
        factors = None
        if isinstance(ground_truth, dict):
            product_key, factors_key = GROUND_TRUTH_FIELDS[task]
            try:
                ground_truth, factors = ground_truth[product_key], ground_truth.get(factors_key)
            except KeyError:
                raise _missing_field(task, repr(product_key), ground_truth) from None
        has_answer, reason = judge_multiply(solution_str, ground_truth, factors)
    return {
        "score": score_of(has_answer, reason, no_answer_score, format_score, correct_score),
        "acc": 1.0 if reason is None else 0.0,
        "has_answer": 1.0 if has_answer else 0.0,
    }

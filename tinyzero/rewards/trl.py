"""TRL adapters: reward functions with TRL's calling convention, without depending on TRL.

TRL calls each reward function with keyword arguments: `prompts`, `completions` (plain strings,
or conversational lists of `{"role", "content"}` messages), `completion_ids`, `trainer_state`,
and every other dataset column as a list with one item per completion. It wants a list of floats.

    from trl import GRPOTrainer
    from tinyzero.rewards.trl import countdown_reward   # dataset columns: target, numbers
    trainer = GRPOTrainer(model=..., reward_funcs=countdown_reward, train_dataset=dataset)

`task_reward` reads datasets written by `python -m data_gen` (columns `data_source`, `reward_model`),
any task per row. `tinyzero.trl_data.prepare_for_trl` loads those files (tasks mixed) and gives
the tokenizer that shows base prompts to the model unchanged; this module needs neither.
"""

from __future__ import annotations

from tinyzero.rewards.answer import CORRECT_SCORE, FORMAT_SCORE, NO_ANSWER_SCORE, did_you_mean, short_repr
from tinyzero.rewards.score import OPTIONS, SCORE_LEVELS, compute_score

# What TRL passes besides the completions and the dataset columns (trl 1.16.0
# trainer/grpo_trainer.py lines 1583-1598 and 1626-1627; RLOOTrainer alike).
TRL_KEYWORDS = frozenset({"prompts", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"})


def completion_text(completion) -> str:
    """The text of one completion: a string as is, or the assistant contents of a conversation."""
    if isinstance(completion, str):
        return completion
    if not isinstance(completion, (list, tuple)):
        raise TypeError(
            "a completion must be a string or a list of {'role', 'content'} messages, got "
            f"{type(completion).__name__} {short_repr(completion)}"
        )
    parts = []
    for message in completion:
        if not isinstance(message, dict):
            raise TypeError(f"a conversational completion holds message dicts, got {message!r}")
        if message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):  # multimodal form: [{"type": "text", "text": ...}, ...]
            parts.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "\n".join(parts)


def _only_columns(function: str, completions, others: dict, options: tuple[str, ...]) -> None:
    """Besides TRL's own arguments, every keyword is a dataset column, a list with one item per
    completion: anything else is an option misspelt (`functools.partial(countdown_reward, formt_score=0.5)`)."""
    for name, value in others.items():
        if name in TRL_KEYWORDS or (isinstance(value, (list, tuple)) and len(value) == len(completions)):
            continue
        raise TypeError(
            f"{function} got {name}={short_repr(value)}{did_you_mean(name, options)}: neither one of its options "
            f"({', '.join(options)}) nor a dataset column (a list with one item per completion)"
        )


def _columns_match(completions, **columns) -> None:
    for name, column in columns.items():
        if column is None:
            raise TypeError(f"the dataset needs a {name!r} column for this reward function")
        if len(column) != len(completions):
            raise ValueError(
                f"column {name!r} has {len(column)} items but there are {len(completions)} completions"
            )


def _rows_have(task: str, completions, **columns) -> None:
    """Every row carries this task's ground truth: a mixed dataset has nulls in the other task's columns."""
    _columns_match(completions, **columns)
    for name, column in columns.items():
        for row, value in enumerate(column):
            if value is None:
                raise ValueError(
                    f"row {row} of the batch has no {name!r} (a row of another task?): "
                    f"{task}_reward scores {task} rows only; for a dataset mixing tasks use task_reward"
                )


def _scores(data_sources, completions, ground_truths, score_levels) -> list[float]:
    return [
        compute_score(source, completion_text(completion), truth, **score_levels)["score"]
        for source, completion, truth in zip(data_sources, completions, ground_truths)
    ]


def countdown_reward(
    completions,
    target=None,
    numbers=None,
    *,
    allow_unused_numbers: bool = False,
    no_answer_score: float = NO_ANSWER_SCORE,
    format_score: float = FORMAT_SCORE,
    correct_score: float = CORRECT_SCORE,
    **kwargs,
) -> list[float]:
    """Countdown reward for datasets with `target` and `numbers` columns."""
    _only_columns("countdown_reward", completions, kwargs, OPTIONS)
    _rows_have("countdown", completions, target=target, numbers=numbers)
    truths = [{"target": t, "numbers": n} for t, n in zip(target, numbers)]
    levels = dict(
        allow_unused_numbers=allow_unused_numbers,
        no_answer_score=no_answer_score,
        format_score=format_score,
        correct_score=correct_score,
    )
    return _scores(["countdown"] * len(completions), completions, truths, levels)


def multiply_reward(
    completions,
    product=None,
    *,
    no_answer_score: float = NO_ANSWER_SCORE,
    format_score: float = FORMAT_SCORE,
    correct_score: float = CORRECT_SCORE,
    **kwargs,
) -> list[float]:
    """Multiplication reward for datasets with a `product` column."""
    _only_columns("multiply_reward", completions, kwargs, SCORE_LEVELS)
    _rows_have("multiply", completions, product=product)
    levels = dict(no_answer_score=no_answer_score, format_score=format_score, correct_score=correct_score)
    return _scores(["multiply"] * len(completions), completions, product, levels)


def task_reward(
    completions,
    data_source=None,
    reward_model=None,
    *,
    allow_unused_numbers: bool = False,
    no_answer_score: float = NO_ANSWER_SCORE,
    format_score: float = FORMAT_SCORE,
    correct_score: float = CORRECT_SCORE,
    **kwargs,
) -> list[float]:
    """Reward for rows in verl's schema (as `data_gen` writes them): any task, chosen per row."""
    _only_columns("task_reward", completions, kwargs, OPTIONS)
    _columns_match(completions, data_source=data_source, reward_model=reward_model)
    truths = [_ground_truth_of(row) for row in reward_model]
    levels = dict(
        allow_unused_numbers=allow_unused_numbers,
        no_answer_score=no_answer_score,
        format_score=format_score,
        correct_score=correct_score,
    )
    return _scores(data_source, completions, truths, levels)


def _ground_truth_of(reward_model):
    try:
        return reward_model["ground_truth"]
    except (KeyError, TypeError, IndexError):
        raise ValueError(
            f"a reward_model cell must be a dict with 'ground_truth' (verl's row schema), got {reward_model!r}"
        ) from None

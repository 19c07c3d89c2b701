"""Rule-based rewards for Countdown and multiplication. Standard library only.

`compute_score` is verl's custom reward function; `score_countdown` / `score_multiply` explain a
score; `tinyzero.rewards.trl` adapts them to TRL. Imports are absolute so that verl can also load
this file by its path (`reward.custom_reward_function.path`).
"""

from tinyzero.rewards.answer import (
    CORRECT_SCORE,
    FORMAT_SCORE,
    MAX_ANSWER_CHARS,
    NO_ANSWER_SCORE,
    ScoreResult,
    extract_answer,
)
from tinyzero.rewards.countdown import evaluate_expression, score_countdown
from tinyzero.rewards.multiply import score_multiply
from tinyzero.rewards.score import TASKS, compute_score

__all__ = [
    "CORRECT_SCORE",
    "FORMAT_SCORE",
    "MAX_ANSWER_CHARS",
    "NO_ANSWER_SCORE",
    "TASKS",
    "ScoreResult",
    "compute_score",
    "evaluate_expression",
    "extract_answer",
    "score_countdown",
    "score_multiply",
]

"""Per-step aggregation: one row of metrics.csv per training step."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from tinyzero.aha.detectors import BEHAVIOURS, Detector, Span, detect_with_reflection
from tinyzero.aha.reader import Rollout
from tinyzero.rewards.answer import ANSWER_OPEN, THINK_CLOSE
from tinyzero.stats import binomial_band, percentile

# metrics.csv columns, in order; the first ten are the documented interface.
COLUMNS = (
    "step", "reward_mean", "accuracy", "format_rate", "response_length_mean", *BEHAVIOURS,
    "response_length_p90", "thinking_length_mean", "reflection", "reflection_low", "reflection_high",
    "responses", "malformed_lines", "cut_responses",
)


def thinking_text(response: str) -> str:
    """The reasoning part: up to </think>, else up to the first <answer>, else everything."""
    for marker in (THINK_CLOSE, ANSWER_OPEN):
        at = response.find(marker)
        if at >= 0:
            return response[:at]
    return response


@dataclass
class StepMetrics:
    """Accumulates one step's rollouts; holds one length per response, nothing more."""

    step: int
    responses: int = 0
    scored: int = 0
    reward_sum: float = 0.0
    correct: int = 0
    formatted: int = 0
    thinking_length_sum: int = 0
    reflective: int = 0  # responses that reflect, judged without reference to correctness
    malformed_lines: int = 0
    cut_responses: int = 0  # responses longer than reader.MEASURED_CHARS, measured on their start
    lengths: list[int] = field(default_factory=list)
    shown: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BEHAVIOURS, 0))

    def add(self, rollout: Rollout, found: dict[str, list[Span]], reflects: bool, length: Callable[[str], int]) -> None:
        """One response: the detectors' spans, whether it reflects (detect_with_reflection), its length."""
        self.responses += 1
        if rollout.score is not None:
            self.scored += 1
            self.reward_sum += rollout.score
        self.correct += rollout.correct
        self.formatted += rollout.formatted
        self.lengths.append(length(rollout.response))
        self.thinking_length_sum += length(thinking_text(rollout.response))
        for behaviour, spans in found.items():
            if spans:
                self.shown[behaviour] = self.shown.get(behaviour, 0) + 1
        self.reflective += reflects

    def row(self) -> dict[str, float | int]:
        n = self.responses
        band = binomial_band(self.reflective, n)
        row: dict[str, float | int] = {
            "step": self.step,
            "reward_mean": self.reward_sum / self.scored if self.scored else math.nan,
            "accuracy": self.correct / n,
            "format_rate": self.formatted / n,
            "response_length_mean": sum(self.lengths) / n,
        }
        row.update({b: count / n for b, count in self.shown.items()})
        row.update(
            response_length_p90=percentile(self.lengths, 90),
            thinking_length_mean=self.thinking_length_sum / n,
            reflection=self.reflective / n,
            reflection_low=band[0],  # the 95% binomial band of the reflection rate
            reflection_high=band[1],
            responses=n,
            malformed_lines=self.malformed_lines,
            cut_responses=self.cut_responses,
        )
        return row


class TokenLength:
    """Length in tokens of a Hugging Face tokenizer; picklable, so worker processes load their own."""

    def __init__(self, name_or_path: str):
        from transformers import AutoTokenizer  # the `train` extra; only when lengths are in tokens

        self.name_or_path = name_or_path
        self._tokenizer = AutoTokenizer.from_pretrained(name_or_path)

    def __call__(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def __getstate__(self) -> dict:
        return {"name_or_path": self.name_or_path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["name_or_path"])


def measure_step(
    step: int,
    rollouts: Iterable[Rollout],
    detectors: Sequence[Detector],
    length: Callable[[str], int] = len,
) -> StepMetrics:
    """Run the detectors over one step's rollouts (a stream) and aggregate them."""
    metrics = StepMetrics(step)
    for rollout in rollouts:
        metrics.add(rollout, *detect_with_reflection(rollout, detectors), length)
    return metrics

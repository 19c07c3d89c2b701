"""The aha step: where the reflection rate shifts up, with accuracy rising as the check.

A single mean-shift change-point (least squares over every split point) on the per-step share of
reflective responses (verification, backtracking or self-correction). The step is only called an
aha moment when the rate after the split is higher than before; it is `confirmed` when accuracy
is higher after it too, as in R1-Zero where reflection and accuracy rise together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tinyzero.aha.detectors import BEHAVIOURS

# Fewer steps than this on either side and a "shift" is just noise on one or two points.
MIN_SEGMENT = 2


def _sse(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values)


def mean_shift(values: Sequence[float], min_segment: int = MIN_SEGMENT) -> int | None:
    """Index k splitting values into [:k] and [k:] with the least total squared error around
    each part's mean; None when the series is too short to split."""
    if len(values) < 2 * min_segment:
        return None
    best_k, best_cost = None, float("inf")
    for k in range(min_segment, len(values) - min_segment + 1):
        cost = _sse(values[:k]) + _sse(values[k:])
        if cost < best_cost - 1e-12:  # ties keep the earliest split
            best_k, best_cost = k, cost
    return best_k


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


@dataclass
class AhaMoment:
    step: int | None
    confirmed: bool
    reason: str
    reflection_before: float | None = None
    reflection_after: float | None = None
    accuracy_before: float | None = None
    accuracy_after: float | None = None
    before: dict[str, float] = field(default_factory=dict)  # behaviour rates, mean over steps
    after: dict[str, float] = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)  # filled by the analysis

    def as_json(self) -> dict:
        return {
            "step": self.step,
            "confirmed": self.confirmed,
            "reason": self.reason,
            "method": "single mean-shift change-point (least squares) on the per-step reflection rate",
            "reflection_rate": {"before": self.reflection_before, "after": self.reflection_after},
            "accuracy": {"before": self.accuracy_before, "after": self.accuracy_after},
            "behaviour_rates": {"before": self.before, "after": self.after},
            "examples": self.examples,
        }


def find_aha(rows: Sequence[dict]) -> AhaMoment:
    """The aha step from metrics rows (one per step, in step order)."""
    if not rows:
        return AhaMoment(None, False, "no steps")
    k = mean_shift([row["reflection"] for row in rows])
    if k is None:
        return AhaMoment(
            None, False, f"{len(rows)} step(s): at least {2 * MIN_SEGMENT} are needed to find a change-point"
        )
    before, after = rows[:k], rows[k:]
    moment = AhaMoment(
        step=int(rows[k]["step"]),
        confirmed=False,
        reason="",
        reflection_before=_mean([r["reflection"] for r in before]),
        reflection_after=_mean([r["reflection"] for r in after]),
        accuracy_before=_mean([r["accuracy"] for r in before]),
        accuracy_after=_mean([r["accuracy"] for r in after]),
        before={b: _mean([r[b] for r in before]) for b in BEHAVIOURS},
        after={b: _mean([r[b] for r in after]) for b in BEHAVIOURS},
    )
    if moment.reflection_after <= moment.reflection_before:
        moment.step = None
        moment.reason = (
            f"the reflection rate does not rise (best split at step {rows[k]['step']}: "
            f"{moment.reflection_before:.3f} before, {moment.reflection_after:.3f} after)"
        )
        return moment
    moment.confirmed = moment.accuracy_after > moment.accuracy_before
    moment.reason = (
        "reflection and accuracy rise together"
        if moment.confirmed
        else "reflection rises but accuracy does not: not confirmed as an aha moment"
    )
    return moment

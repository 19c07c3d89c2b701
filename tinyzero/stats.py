"""Summary statistics shared by data generation, evaluation and the aha analysis. Standard library only.

A leaf module, like tinyzero.rewards and tinyzero.files: it imports nothing from the project, so
data_gen (which must stay importable without torch or verl), eval and aha can all depend on it and
the arrows still point one way (leaves <- data_gen <- train, eval, aha).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100: an observed value, no interpolation) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def percentiles(values: Sequence[float], qs: Iterable[int] = (50, 90, 99)) -> dict[str, float]:
    """Nearest-rank percentiles, plus mean and max."""
    if not values:
        return {"mean": 0.0, **{f"p{q}": 0.0 for q in qs}, "max": 0.0}
    ordered = sorted(values)  # sorted once: percentile's own sort of a sorted list is linear
    out = {"mean": sum(ordered) / len(ordered)}
    out.update({f"p{q}": percentile(ordered, q) for q in qs})
    out["max"] = float(ordered[-1])
    return out


def binomial_band(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a rate successes / trials (95% for z = 1.96): the band within which
    a step's rate moves by sampling alone. Unlike rate +- z * standard error it stays within 0..1
    and is not empty at 0 or 1 successes."""
    if trials <= 0:
        raise ValueError(f"trials={trials}: a rate needs at least one trial")
    rate = successes / trials
    centre = (rate + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)

"""The aha step: where the reflection rate starts to rise, with accuracy rising as the check.

The per-step share of reflective responses (verification, backtracking or self-correction) is fitted
by least squares with a flat-ramp-flat curve: a low level up to the step the rise starts from, a
straight climb (which may open with a jump), a high level from the ramp's end on. Every pair of
knots is tried (a sudden jump is a ramp one step long), so on a gradual rise the reported step is
where the rate starts climbing and `ramp_end` where it stops; a single mean-shift split
(`mean_shift`, kept for comparison) lands in the middle of the ramp instead.

The rise is an aha moment only when the fitted high level is above the low one by more than
RISE_OVER_NOISE times the fit's residual noise per step; it is `confirmed` when accuracy after the
ramp is higher than before it too, as in R1-Zero where reflection and accuracy rise together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from tinyzero.aha.detectors import BEHAVIOURS

# Fewer steps than this at the low level, or after the rise starts, and a "rise" is just noise on
# one or two points.
MIN_SEGMENT = 2
# On white noise the best fit "rises" by more than 2.5 residual standard deviations in about 5% of
# series of 8 steps and 1-2% of series of 12 to 300 steps (measured, 300 series each), while a
# visible aha (0.05 -> 0.3 at a noise of 0.05 per step: 5) passes easily.
RISE_OVER_NOISE = 2.5
# Differences of rates below this are rounding, not a rise (a constant series fits with 1e-17).
RISE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class RampFit:
    """Indices into the series: `last_low` is the last point at the low level, `first_high` the
    first at the high level (first_high == last_low + 1: a jump). `start` is the fitted value at
    the rise's first point, last_low + 1: one slope step above `low` on a gradual ramp, higher when
    the rise opens with a jump and then climbs on."""

    last_low: int
    first_high: int
    low: float
    start: float
    high: float
    noise: float  # residual standard deviation per point

    @property
    def rise_over_noise(self) -> float:
        if self.noise <= RISE_TOLERANCE:  # an exact fit: any real rise stands out
            return math.inf if self.high > self.low + RISE_TOLERANCE else 0.0
        return (self.high - self.low) / self.noise


# A jump at the rise's start is fitted only when it pays for its extra level this many times over
# in BIC terms (n log of the SSE ratio > JUMP_PENALTY log n). Simulated (40 series of 40 steps, 24
# and 64 responses per step): with 1 (plain BIC) a sudden jump followed by noise got a made-up ramp
# end in a quarter of the series; with 3 no gradual ramp got a jump, and every jump followed by a
# slow climb did (fitted as a plain ramp it starts up to 7 steps early).
JUMP_PENALTY = 3.0


class _Prefix:
    """Sums of x^k y^j over index ranges in O(1), from prefix sums."""

    def __init__(self, x: list[float], y: list[float]):
        def prefix(items):
            return [0.0, *accumulate(items)]

        self.x, self.xx = prefix(x), prefix(a * a for a in x)
        self.y, self.xy = prefix(y), prefix(a * b for a, b in zip(x, y))

    def ramp_sums(self, lo: int, hi: int, origin: float) -> tuple[float, float, float]:
        """Over indices lo..hi-1: sum (x - origin), sum (x - origin)^2, sum (x - origin) y."""
        count = hi - lo
        sx, sxx = self.x[hi] - self.x[lo], self.xx[hi] - self.xx[lo]
        sy, sxy = self.y[hi] - self.y[lo], self.xy[hi] - self.xy[lo]
        return sx - count * origin, sxx - 2 * origin * sx + count * origin**2, sxy - origin * sy


def fit_ramp(values: Sequence[float], positions: Sequence[float] | None = None,
             min_segment: int = MIN_SEGMENT) -> RampFit | None:
    """The least-squares fit of `values` at `positions` (default 0, 1, 2, ...) by a curve that is
    `low` up to last_low, rises to `high` at first_high and stays there. None when the series is
    too short. Every pair of knots is tried; ties keep the earliest start and the shortest ramp.

    Two shapes of rise, nested: a continuous ramp from the last low point (a gradual rise; a jump
    when the ramp is one step long), and a jump followed by a ramp (the rate leaps, then climbs on),
    chosen only when its extra level pays for itself (JUMP_PENALTY). For each knot pair the curve
    is linear in its levels: a regression on one or two indicator-and-ramp columns whose sums come
    from prefix sums, so the search is O(n^2).
    """
    n = len(values)
    if n < 2 * min_segment:
        return None
    x = [float(p) for p in positions] if positions is not None else [float(i) for i in range(n)]
    y = [float(v) for v in values]
    sums = _Prefix(x, y)
    total = sums.y[n]
    centred_yy = sum(v * v for v in y) - total * total / n

    def column(lo: int, e: int, origin: float) -> tuple[float, float, float]:
        """Centred sums (c.1 dropped) of the column that is 0 up to index lo-1, (x - origin) / span
        from lo to e-1 and 1 from e on: its sum, its sum of squares and its products with y."""
        span, high_count = x[e] - origin, n - e
        r1, r2, ry = sums.ramp_sums(lo, e, origin)
        c = r1 / span + high_count
        cc = r2 / span**2 + high_count
        cy = ry / span + (total - sums.y[e])
        return c, cc - c * c / n, cy - c * total / n

    ramp_best = jump_best = None  # (sse, last_low, first_high, coefficients...)
    for s in range(min_segment - 1, n - min_segment):
        after = n - s - 1  # the rise's indicator column: 1 from s+1 on
        cuu, cuy = after - after * after / n, (total - sums.y[s + 1]) - after * total / n
        for e in range(s + 1, n):
            if e == s + 1 and n - e < min_segment:
                continue  # a jump needs min_segment points after it, like a mean-shift split
            # continuous ramp from x[s]: one column
            w, cww, cwy = column(s + 1, e, x[s])
            sse = centred_yy - cwy * cwy / cww
            if ramp_best is None or sse < ramp_best[0] - 1e-12:
                ramp_best = (sse, s, e, w, cwy / cww)
            if e == s + 1:
                continue
            # jump at s+1, then a ramp from x[s+1]: the indicator column and a ramp column
            v, cvv, cvy = column(s + 1, e, x[s + 1])
            cuv = v - after * v / n  # v is non-zero only where the indicator is 1
            det = cuu * cvv - cuv * cuv
            if det <= 1e-12:
                continue
            jump = (cuy * cvv - cvy * cuv) / det
            climb = (cvy * cuu - cuy * cuv) / det
            sse = centred_yy - (jump * cuy + climb * cvy)
            if jump_best is None or sse < jump_best[0] - 1e-12:
                jump_best = (sse, s, e, after, v, jump, climb)

    sse, s, e, w, rise = ramp_best
    low = (total - rise * w) / n
    fit = RampFit(s, e, low, low + rise * (x[s + 1] - x[s]) / (x[e] - x[s]), low + rise, _noise(sse, n, 4))
    floor = 1e-12 * centred_yy + 1e-300  # rounding: two exact fits are equally good
    if jump_best is not None and n * math.log(max(sse, floor) / max(jump_best[0], floor)) > JUMP_PENALTY * math.log(n):
        sse, s, e, after, v, jump, climb = jump_best
        low = (total - jump * after - climb * v) / n
        fit = RampFit(s, e, low, low + jump, low + jump + climb, _noise(sse, n, 5))
    return fit


def _noise(sse: float, n: int, parameters: int) -> float:
    """Residual standard deviation per point (levels and knots both count as fitted)."""
    return math.sqrt(max(sse, 0.0) / max(n - parameters, 1))


def _sse(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values)


def mean_shift(values: Sequence[float], min_segment: int = MIN_SEGMENT) -> int | None:
    """Index k splitting values into [:k] and [k:] with the least total squared error around
    each part's mean; None when the series is too short to split. For comparison only: on a
    gradual ramp it splits mid-ramp, which is why find_aha fits a ramp (fit_ramp)."""
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
    step: int | None  # the first step above the low level: where the rise begins
    confirmed: bool
    reason: str
    ramp_end: int | None = None  # the first step at the high level (== step for a jump)
    reflection_before: float | None = None  # means over the steps up to the rise ...
    reflection_after: float | None = None  # ... and from the ramp's end on
    accuracy_before: float | None = None
    accuracy_after: float | None = None
    before: dict[str, float] = field(default_factory=dict)  # behaviour rates, mean over steps
    after: dict[str, float] = field(default_factory=dict)
    fit: dict[str, float] = field(default_factory=dict)  # fitted levels (low, start, high), noise, rise_over_noise
    examples: list[dict] = field(default_factory=list)  # filled by the analysis

    def as_json(self) -> dict:
        return {
            "step": self.step,
            "ramp_end": self.ramp_end,
            "confirmed": self.confirmed,
            "reason": self.reason,
            "method": "flat-ramp-flat least-squares fit of the per-step reflection rate over every pair of knots; "
                      "step: the first step of the rise, ramp_end: the first at the high level",
            "fit": self.fit,
            "reflection_rate": {"before": self.reflection_before, "after": self.reflection_after},
            "accuracy": {"before": self.accuracy_before, "after": self.accuracy_after},
            "behaviour_rates": {"before": self.before, "after": self.after},
            "examples": self.examples,
        }


def find_aha(rows: Sequence[dict]) -> AhaMoment:
    """The aha step from metrics rows (one per step, in step order)."""
    if not rows:
        return AhaMoment(None, False, "no steps")
    ramp = fit_ramp([row["reflection"] for row in rows], [row["step"] for row in rows])
    if ramp is None:
        return AhaMoment(
            None, False, f"{len(rows)} step(s): at least {2 * MIN_SEGMENT} are needed to find a change-point"
        )
    before, after = rows[: ramp.last_low + 1], rows[ramp.first_high :]
    start, end = int(rows[ramp.last_low + 1]["step"]), int(rows[ramp.first_high]["step"])
    moment = AhaMoment(
        step=start,
        confirmed=False,
        reason="",
        ramp_end=end,
        reflection_before=_mean([r["reflection"] for r in before]),
        reflection_after=_mean([r["reflection"] for r in after]),
        accuracy_before=_mean([r["accuracy"] for r in before]),
        accuracy_after=_mean([r["accuracy"] for r in after]),
        before={b: _mean([r[b] for r in before]) for b in BEHAVIOURS},
        after={b: _mean([r[b] for r in after]) for b in BEHAVIOURS},
        fit={"low": ramp.low, "start": ramp.start, "high": ramp.high, "noise": ramp.noise,
             "rise_over_noise": ramp.rise_over_noise},
    )
    rise = f"from step {start} to {end}: fitted {ramp.low:.3f} -> {ramp.high:.3f}"
    if ramp.high <= ramp.low + RISE_TOLERANCE:
        moment.step = moment.ramp_end = None
        moment.reason = f"the reflection rate does not rise (best fit {rise})"
        return moment
    if ramp.rise_over_noise <= RISE_OVER_NOISE:
        moment.step = moment.ramp_end = None
        moment.reason = (f"the reflection rate rises within its noise (best fit {rise}, a rise of "
                         f"{ramp.rise_over_noise:.1f} x the noise of {ramp.noise:.3f} per step; "
                         f"more than {RISE_OVER_NOISE} is needed)")
        return moment
    moment.confirmed = moment.accuracy_after > moment.accuracy_before
    moment.reason = (
        "reflection and accuracy rise together"
        if moment.confirmed
        else "reflection rises but accuracy does not: not confirmed as an aha moment"
    )
    return moment

"""The aha step: where the reflection rate starts to rise, and whether that rise is an aha moment.

The per-step share of reflective responses (verification, backtracking or self-correction markers,
all found without looking at whether the answer is right) is fitted by least squares with a
flat-ramp-flat curve: a low level up to the step the rise starts from, a straight climb (which may
open with a jump), a high level from the ramp's end on. Every pair of knots is tried (a sudden
jump is a ramp one step long), so on a gradual rise the reported step is where the rate starts
climbing and `ramp_end` where it stops; a single mean-shift split (`mean_shift`, kept for
comparison) lands in the middle of the ramp instead.

A rise is an aha moment only when all of these hold (`significance_rule` states it in the report):
1. it is significant: the fit beats the best flat line by more than chance (`rise_p_value`: a
   parametric bootstrap under the flat null, p < ALPHA);
2. it is sustained: the risen level holds for at least MIN_HOLD steps to the end of the dump,
   else the verdict is "still rising at the end: not confirmed";
3. accuracy follows, judged without circularity: held-out accuracy from the run's validation
   dumps when there are validations before and after the rise, else training accuracy, which
   cannot move the reflection rate (no detector that reads correctness counts in it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tinyzero.aha.detectors import BEHAVIOURS

# Fewer steps than this at the low level, or after the rise starts, and a "rise" is just noise on
# one or two points.
MIN_SEGMENT = 2
# Each training step samples a fresh batch of prompts, so one step's rate can be lifted by its
# batch alone (easier problems, or the one step a resumed run adds). Three steps at the risen
# level are three batches that agree: a level the model keeps, not a spike; and a rise that R1-Zero
# style holds for the rest of the run passes three steps after it ends.
MIN_HOLD = 3
# The significance level of the bootstrap. An aha over tens of steps with a few dozen responses a
# step has p at the floor of the test (1 / (REPLICATES + 1)), so a strict level costs no real moment.
ALPHA = 0.01
# Simulated flat runs for the p-value: p can go down to 0.001. Long dumps get fewer (the fit is
# O(steps^2) per run), at least MIN_REPLICATES: about 2 s up to 300 steps on one core.
REPLICATES = 999
MIN_REPLICATES = 199
REPLICATE_WORK = REPLICATES * 300**2  # replicates x steps^2 kept below this
REPLICATE_CHUNK = 100  # runs fitted at once: as fast as all at once, and memory of 100 x steps floats
SEED = 0  # the bootstrap is seeded: the same dump always gets the same p-value
# Differences of rates below this are rounding, not a rise (a constant series fits with 1e-17).
RISE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class RampFit:
    """Indices into the series: `last_low` is the last point at the low level, `first_high` the
    first at the high level (first_high == last_low + 1: a jump). `start` is the fitted value at
    the rise's first point, last_low + 1: one slope step above `low` on a gradual ramp, higher when
    the rise opens with a jump and then climbs on (`opens_with_jump`)."""

    last_low: int
    first_high: int
    low: float
    start: float
    high: float
    noise: float  # residual standard deviation per point
    sse: float = 0.0  # the fit's squared error ...
    flat_sse: float = 0.0  # ... and the best flat line's (around the mean)
    opens_with_jump: bool = False

    @property
    def rises(self) -> bool:
        return self.high > self.low + RISE_TOLERANCE

    @property
    def rise_over_noise(self) -> float:
        if self.noise <= RISE_TOLERANCE:  # an exact fit: any real rise stands out
            return math.inf if self.rises else 0.0
        return (self.high - self.low) / self.noise

    @property
    def improvement(self) -> float:
        """The share of the flat line's squared error the fit removes (0 when it does not rise):
        the bootstrap's statistic. A share, not an amount, so steps that vary more than binomial
        noise alone (batches of easier or harder prompts) do not read as a rise."""
        return _improvement(self.sse, self.flat_sse, self.rises)

    @property
    def held_from(self) -> int:
        """The first point from which the risen level holds: the ramp's end, or the rise's first
        point when the fit opens with a jump up (the rate never falls back below the jump)."""
        return self.last_low + 1 if self.opens_with_jump and self.start > self.low else self.first_high


def _improvement(sse, flat_sse, rises):
    """1 - sse / flat_sse where the fit rises and the series is not constant, else 0 (arrays too)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(rises & (flat_sse > 0), 1.0 - sse / np.where(flat_sse > 0, flat_sse, 1.0), 0.0)
    return float(share) if np.ndim(share) == 0 else share


# A jump at the rise's start is fitted only when it pays for its extra level this many times over
# in BIC terms (n log of the SSE ratio > JUMP_PENALTY log n). Simulated (40 series of 40 steps, 24
# and 64 responses per step): with 1 (plain BIC) a sudden jump followed by noise got a made-up ramp
# end in a quarter of the series; with 3 no gradual ramp got a jump, and every jump followed by a
# slow climb did (fitted as a plain ramp it starts up to 7 steps early).
JUMP_PENALTY = 3.0


def _fit_many(series: np.ndarray, x: np.ndarray, min_segment: int) -> dict[str, np.ndarray]:
    """fit_ramp for every row of `series` at once (one per simulated run in the significance test).

    For each knot pair the curve is linear in its levels: a regression on one or two
    indicator-and-ramp columns whose sums come from prefix sums. The loop runs over the last low
    point; every ramp end and every series is one array operation, so the search is O(n^2) per
    series in numpy rather than in Python."""
    count, n = series.shape
    zero = np.zeros((count, 1))
    px, pxx = np.concatenate([[0.0], np.cumsum(x)]), np.concatenate([[0.0], np.cumsum(x * x)])
    py, pxy = np.hstack([zero, np.cumsum(series, 1)]), np.hstack([zero, np.cumsum(series * x, 1)])
    total = py[:, n]
    centred_yy = (series * series).sum(1) - total * total / n

    def column(lo: int, ends: np.ndarray, origin: float):
        """Centred sums (c.1 dropped) of the columns that are 0 up to index lo-1, (x - origin) / span
        from lo to e-1 and 1 from e on, one per end e: their sums, sums of squares, products with y."""
        span, high_count, inside = x[ends] - origin, n - ends, ends - lo
        sx, sxx = px[ends] - px[lo], pxx[ends] - pxx[lo]
        sy, sxy = py[:, ends] - py[:, [lo]], pxy[:, ends] - pxy[:, [lo]]
        r1, r2, ry = sx - inside * origin, sxx - 2 * origin * sx + inside * origin**2, sxy - origin * sy
        c = r1 / span + high_count
        cy = ry / span + (total[:, None] - py[:, ends])
        return c, r2 / span**2 + high_count - c * c / n, cy - c * total[:, None] / n

    def first_best(sse: np.ndarray) -> np.ndarray:
        """Per series, the first end whose error is the least (ties keep the shortest ramp)."""
        return np.argmax(sse <= sse.min(1, keepdims=True) + 1e-12, 1)

    rows = np.arange(count)
    inf = np.full(count, np.inf)
    ramp = {"sse": inf.copy(), "last_low": np.zeros(count, int), "first_high": np.zeros(count, int),
            "low": np.zeros(count), "start": np.zeros(count), "high": np.zeros(count)}
    jump = {key: value.copy() for key, value in ramp.items()}

    def keep(best: dict, sse, s, ends, low, start, high) -> None:
        """Replace the best fit so far where this knot pair is better (ties keep the earliest start)."""
        better = sse < best["sse"] - 1e-12
        for key, value in (("sse", sse), ("last_low", s), ("first_high", ends), ("low", low), ("start", start),
                           ("high", high)):
            best[key] = np.where(better, value, best[key])

    for s in range(min_segment - 1, n - min_segment):
        ends = np.arange(s + 1, n)
        # continuous ramp from x[s]: one column
        w, cww, cwy = column(s + 1, ends, x[s])
        at = first_best(centred_yy[:, None] - cwy * cwy / cww)
        rise = cwy[rows, at] / cww[at]
        low = (total - rise * w[at]) / n
        keep(ramp, centred_yy - cwy[rows, at] ** 2 / cww[at], s, ends[at], low,
             low + rise * (x[s + 1] - x[s]) / (x[ends[at]] - x[s]), low + rise)
        if len(ends) < 2:
            continue
        # jump at s+1, then a ramp from x[s+1] ending at e > s+1: the indicator column and a ramp column
        ends = ends[1:]
        after = n - s - 1  # the indicator column: 1 from s+1 on
        cuu, cuy = after - after * after / n, (total - py[:, s + 1]) - after * total / n
        v, cvv, cvy = column(s + 1, ends, x[s + 1])
        cuv = v - after * v / n  # v is non-zero only where the indicator is 1
        det = cuu * cvv - cuv * cuv
        solvable = det > 1e-12
        det = np.where(solvable, det, 1.0)
        leap = (cuy[:, None] * cvv - cvy * cuv) / det
        climb = (cvy * cuu - cuy[:, None] * cuv) / det
        sse = np.where(solvable, centred_yy[:, None] - (leap * cuy[:, None] + climb * cvy), np.inf)
        at = first_best(sse)
        leap, climb = leap[rows, at], climb[rows, at]
        low = (total - leap * after - climb * v[at]) / n
        keep(jump, sse[rows, at], s, ends[at], low, low + leap, low + leap + climb)

    # A jump's extra level must pay for itself JUMP_PENALTY times over in BIC terms.
    floor = 1e-12 * centred_yy + 1e-300  # rounding: two exact fits are equally good
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = n * np.log(np.maximum(ramp["sse"], floor) / np.maximum(jump["sse"], floor))
    opens_with_jump = np.isfinite(jump["sse"]) & (gain > JUMP_PENALTY * math.log(n))
    fits = {key: np.where(opens_with_jump, jump[key], ramp[key]) for key in ramp}
    fits["opens_with_jump"] = opens_with_jump
    fits["flat_sse"] = centred_yy
    return fits


def fit_ramp(values: Sequence[float], positions: Sequence[float] | None = None,
             min_segment: int = MIN_SEGMENT) -> RampFit | None:
    """The least-squares fit of `values` at `positions` (default 0, 1, 2, ...) by a curve that is
    `low` up to last_low, rises to `high` at first_high and stays there. None when the series is
    too short. Every pair of knots is tried; ties keep the earliest start and the shortest ramp.

    Two shapes of rise, nested: a continuous ramp from the last low point (a gradual rise; a jump
    when the ramp is one step long), and a jump followed by a ramp (the rate leaps, then climbs on),
    chosen only when its extra level pays for itself (JUMP_PENALTY).
    """
    n = len(values)
    if n < 2 * min_segment:
        return None
    x = np.array([float(p) for p in positions] if positions is not None else range(n), dtype=float)
    fits = _fit_many(np.array([values], dtype=float), x, min_segment)
    jump = bool(fits["opens_with_jump"][0])
    sse = float(max(fits["sse"][0], 0.0))
    return RampFit(int(fits["last_low"][0]), int(fits["first_high"][0]), float(fits["low"][0]),
                   float(fits["start"][0]), float(fits["high"][0]), _noise(sse, n, 5 if jump else 4),
                   sse=sse, flat_sse=float(max(fits["flat_sse"][0], 0.0)), opens_with_jump=jump)


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


def replicates_for(steps: int) -> int:
    """How many flat runs the bootstrap simulates for a dump of this many steps."""
    return max(MIN_REPLICATES, min(REPLICATES, REPLICATE_WORK // max(steps, 1) ** 2))


def rise_p_value(rates: Sequence[float], responses: Sequence[int], positions: Sequence[float],
                 fit: RampFit, seed: int = SEED) -> tuple[float, int]:
    """(p, replicates): how often a run without any rise fits as well. Under the flat null every
    step's count is binomial at the pooled rate with that step's number of responses; each
    simulated run is refitted exactly as the real one (every knot pair, the jump's penalty), and
    p = (1 + runs whose improvement over their flat line is at least the fit's) / (1 + replicates)."""
    counts = np.asarray(responses, dtype=int)
    pooled = float(np.dot(np.asarray(rates, dtype=float), counts) / counts.sum())
    replicates = replicates_for(len(counts))
    x = np.asarray(positions, dtype=float)
    rng = np.random.default_rng(seed)
    as_good = 0
    for done in range(0, replicates, REPLICATE_CHUNK):  # a chunk at a time: memory stays a few arrays of steps
        simulated = rng.binomial(counts, pooled, size=(min(REPLICATE_CHUNK, replicates - done), len(counts))) / counts
        fits = _fit_many(simulated, x, MIN_SEGMENT)
        improvements = _improvement(np.maximum(fits["sse"], 0.0), fits["flat_sse"],
                                    fits["high"] > fits["low"] + RISE_TOLERANCE)
        as_good += int((improvements >= fit.improvement - 1e-12).sum())
    return (1 + as_good) / (1 + replicates), replicates


def significance_rule(replicates: int = REPLICATES) -> str:
    """The rule an aha moment must pass, as the report states it."""
    return (
        f"An aha is confirmed only when (1) the flat-ramp-flat fit beats the best flat line by more than "
        f"chance: p < {ALPHA} from {replicates} simulated runs without a rise (each step's count binomial at "
        f"the pooled rate with that step's number of responses, refitted the same way; p = the share of runs "
        f"whose fit removes at least as large a share of the flat line's squared error, counting the real "
        f"one); (2) the risen level holds for at least {MIN_HOLD} steps to the end of the dump (a rise that "
        f"ends on the last steps is still rising: not confirmed); (3) accuracy follows: held-out accuracy "
        f"from the run's validation dumps when there are validations before and after the rise, else "
        f"training accuracy. The reflection rate never counts a detector that reads correctness, so a "
        f"behaviour that fires only on correct answers cannot confirm by itself."
    )


@dataclass(frozen=True)
class Validation:
    """One validation on the held-out problems (trainer.validation_data_dir/STEP.jsonl)."""

    step: int
    problems: int
    correct: int


def _pooled_accuracy(validations: Sequence[Validation]) -> float:
    return sum(v.correct for v in validations) / sum(v.problems for v in validations)


def _confirmation(before: Sequence[dict], held: Sequence[dict], validations: Sequence[Validation]) -> dict:
    """What "accuracy follows" is judged on: held-out accuracy when validations exist before the
    rise and while its level holds, else training accuracy over the same steps."""
    first, holding = int(before[-1]["step"]) + 1, int(held[0]["step"])
    earlier = [v for v in validations if v.step < first]
    later = [v for v in validations if v.step >= holding]
    if earlier and later:
        accuracy_before, accuracy_after = _pooled_accuracy(earlier), _pooled_accuracy(later)
        return {
            "source": "held_out_accuracy",
            "measure": "held-out accuracy",
            "before": accuracy_before,
            "after": accuracy_after,
            "validation_steps": {"before": [v.step for v in earlier], "after": [v.step for v in later]},
            "description": f"held-out accuracy from the validation dumps, {accuracy_before:.3f} at step(s) "
                           f"{', '.join(str(v.step) for v in earlier)} -> {accuracy_after:.3f} at step(s) "
                           f"{', '.join(str(v.step) for v in later)}",
        }
    if validations:
        why = (f"validations at step(s) {', '.join(str(v.step) for v in validations)}: none both before step "
               f"{first} and from step {holding} on")
    else:
        why = "no validation dumps"
    accuracy_before, accuracy_after = _mean([r["accuracy"] for r in before]), _mean([r["accuracy"] for r in held])
    return {
        "source": "training_accuracy",
        "measure": "training accuracy",
        "before": accuracy_before,
        "after": accuracy_after,
        "description": f"training accuracy {accuracy_before:.3f} -> {accuracy_after:.3f}, beside a reflection "
                       f"rate measured without reference to correctness ({why})",
    }


@dataclass
class AhaMoment:
    step: int | None  # the first step above the low level: where the rise begins
    confirmed: bool
    reason: str
    verdict: str = "no rise"  # one line: "aha at step N (p = ...)", "rise not significant (p = ...)", ...
    ramp_end: int | None = None  # the first step at the high level (== step for a jump)
    p_value: float | None = None
    replicates: int | None = None
    held_steps: int | None = None  # steps at the risen level, to the end of the dump
    reflection_before: float | None = None  # means over the steps up to the rise ...
    reflection_after: float | None = None  # ... and over those at its risen level (RampFit.held_from on)
    accuracy_before: float | None = None  # training accuracy, over the same steps
    accuracy_after: float | None = None
    confirmation: dict = field(default_factory=dict)  # what "accuracy follows" was judged on (_confirmation)
    before: dict[str, float] = field(default_factory=dict)  # behaviour rates, mean over steps
    after: dict[str, float] = field(default_factory=dict)
    fit: dict[str, float] = field(default_factory=dict)  # levels (low, start, high), noise, rise_over_noise, improvement
    fitted: list[float] = field(default_factory=list)  # the fitted curve at every step, for the plot
    examples: list[dict] = field(default_factory=list)  # filled by the analysis

    def as_json(self) -> dict:
        return {
            "verdict": self.verdict,
            "step": self.step,
            "ramp_end": self.ramp_end,
            "confirmed": self.confirmed,
            "p_value": self.p_value,
            "reason": self.reason,
            "confirmation": self.confirmation,
            "significance": {"rule": significance_rule(self.replicates or REPLICATES), "alpha": ALPHA,
                             "replicates": self.replicates, "seed": SEED, "min_hold": MIN_HOLD,
                             "held_steps": self.held_steps},
            "method": "flat-ramp-flat least-squares fit of the per-step reflection rate over every pair of knots; "
                      "step: the first step of the rise, ramp_end: the first at the high level",
            "fit": self.fit,
            "reflection_rate": {"before": self.reflection_before, "after": self.reflection_after},
            "accuracy": {"before": self.accuracy_before, "after": self.accuracy_after},
            "behaviour_rates": {"before": self.before, "after": self.after},
            "examples": self.examples,
        }


def _curve(fit: RampFit, x: Sequence[float]) -> list[float]:
    """The fitted flat-ramp-flat curve at every point."""
    s, e = fit.last_low, fit.first_high
    curve = []
    for i, xi in enumerate(x):
        if i <= s:
            curve.append(fit.low)
        elif i >= e:
            curve.append(fit.high)
        elif fit.opens_with_jump:
            curve.append(fit.start + (fit.high - fit.start) * (xi - x[s + 1]) / (x[e] - x[s + 1]))
        else:
            curve.append(fit.low + (fit.high - fit.low) * (xi - x[s]) / (x[e] - x[s]))
    return curve


def find_aha(rows: Sequence[dict], validations: Sequence[Validation] = ()) -> AhaMoment:
    """The aha step and its verdict from metrics rows (one per step, in step order, each with the
    `responses` its rates are shares of) and the run's validations on held-out problems, if any."""
    if not rows:
        return AhaMoment(None, False, "no steps")
    unsized = [row["step"] for row in rows if not row.get("responses")]
    if unsized:
        raise ValueError(f"metrics row of step {unsized[0]} has no `responses` (how many responses its rates "
                         "are shares of): the significance test needs each step's count")
    steps = [row["step"] for row in rows]
    rates = [row["reflection"] for row in rows]
    ramp = fit_ramp(rates, steps)
    if ramp is None:
        return AhaMoment(
            None, False, f"{len(rows)} step(s): at least {2 * MIN_SEGMENT} are needed to find a change-point"
        )
    before, held = rows[: ramp.last_low + 1], rows[ramp.held_from :]
    start, end = int(rows[ramp.last_low + 1]["step"]), int(rows[ramp.first_high]["step"])
    moment = AhaMoment(
        step=start,
        confirmed=False,
        reason="",
        ramp_end=end,
        reflection_before=_mean([r["reflection"] for r in before]),
        reflection_after=_mean([r["reflection"] for r in held]),
        accuracy_before=_mean([r["accuracy"] for r in before]),
        accuracy_after=_mean([r["accuracy"] for r in held]),
        before={b: _mean([r[b] for r in before]) for b in BEHAVIOURS},
        after={b: _mean([r[b] for r in held]) for b in BEHAVIOURS},
        fit={"low": ramp.low, "start": ramp.start, "high": ramp.high, "noise": ramp.noise,
             "rise_over_noise": ramp.rise_over_noise, "improvement": ramp.improvement},
        fitted=_curve(ramp, steps),
    )
    rise = f"from step {start} to {end}: fitted {ramp.low:.3f} -> {ramp.high:.3f}"
    if not ramp.rises:
        moment.step = moment.ramp_end = None
        moment.reason = f"the reflection rate does not rise (best fit {rise})"
        return moment
    moment.p_value, moment.replicates = rise_p_value(rates, [row["responses"] for row in rows], steps, ramp)
    p = f"p = {moment.p_value:.3f}"
    if moment.p_value >= ALPHA:
        moment.step = moment.ramp_end = None
        moment.verdict = f"rise not significant ({p})"
        moment.reason = (f"the reflection rate rises within its noise (best fit {rise}, removing "
                         f"{ramp.improvement:.0%} of the flat line's squared error; runs without a rise do as "
                         f"well in {moment.p_value:.1%} of {moment.replicates} simulations, {ALPHA:.0%} or less "
                         "is needed)")
        return moment
    moment.held_steps = len(held)
    if len(held) < MIN_HOLD:
        moment.verdict = "still rising at the end: not confirmed"
        moment.reason = (f"the reflection rate rises ({rise}, {p}) but holds its risen level for only "
                         f"{len(held)} step(s) before the dump ends; {MIN_HOLD} are needed")
        return moment
    moment.confirmation = _confirmation(before, held, validations)
    measure = moment.confirmation["measure"]
    moment.confirmed = moment.confirmation["after"] > moment.confirmation["before"]
    if moment.confirmed:
        moment.verdict = f"aha at step {start} ({p})"
        moment.reason = f"reflection and {measure} rise together"
    else:
        moment.verdict = f"rise at step {start} ({p}), not confirmed: {measure} does not rise"
        moment.reason = f"reflection rises but {measure} does not: not confirmed as an aha moment"
    return moment

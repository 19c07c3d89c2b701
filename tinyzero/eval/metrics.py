"""From scored samples to numbers: accuracy, pass@k, format rate, lengths, difficulty, s1's curve.

Everything here is plain Python over `ScoredSample` records, so it is cheap to test exhaustively.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from tinyzero.stats import percentiles  # shared with data_gen and aha


@dataclass(frozen=True)
class ScoredSample:
    """One response to one problem, scored by `tinyzero.rewards.compute_score`."""

    problem: int  # index of the problem in the evaluated data
    sample: int  # 0..n-1
    budget: int | None  # thinking budget (None: no forcing)
    difficulty: str
    acc: float
    score: float
    has_answer: float
    response_tokens: int
    thinking_tokens: int


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): chance that k of the n samples, drawn without
    replacement, include at least one of the c correct ones: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    # Exact integer binomials: n is small, and this avoids the float cancellation of products.
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def default_ks(n: int) -> list[int]:
    """k = 1, 2, 4, ... up to n, and n itself."""
    ks = [1 << i for i in range(n.bit_length()) if (1 << i) <= n]
    return ks if ks[-1] == n else ks + [n]


def _by_problem(samples: Sequence[ScoredSample]) -> dict[int, list[ScoredSample]]:
    groups: dict[int, list[ScoredSample]] = defaultdict(list)
    for s in samples:
        groups[s.problem].append(s)
    return groups


def summarize(samples: Sequence[ScoredSample], ks: Sequence[int]) -> dict:
    """Metrics of one setting (one budget, or no budget) over n samples per problem.

    accuracy: mean correctness over all samples (the greedy accuracy when n=1);
    pass_at_k: mean over problems of the unbiased estimator; format_rate: share of responses
    with a complete <answer>...</answer>; lengths in tokens.
    """
    if not samples:
        raise ValueError("no samples to summarize")
    problems = _by_problem(samples)
    sizes = {len(group) for group in problems.values()}
    if len(sizes) != 1:
        raise ValueError(f"every problem needs the same number of samples, got sizes {sorted(sizes)}")
    (n,) = sizes
    pass_k = {}
    for k in ks:
        values = [pass_at_k(n, sum(s.acc >= 1.0 for s in group), k) for group in problems.values()]
        pass_k[str(k)] = sum(values) / len(values)
    response_tokens = percentiles([s.response_tokens for s in samples])
    thinking_tokens = percentiles([s.thinking_tokens for s in samples])
    return {
        "problems": len(problems),
        "samples_per_problem": n,
        "accuracy": sum(s.acc for s in samples) / len(samples),
        "pass_at_k": pass_k,
        "format_rate": sum(s.has_answer for s in samples) / len(samples),
        "mean_score": sum(s.score for s in samples) / len(samples),
        "mean_response_tokens": response_tokens["mean"],
        "mean_thinking_tokens": thinking_tokens["mean"],
        "response_tokens_stats": response_tokens,
        "thinking_tokens_stats": thinking_tokens,
    }


def by_difficulty(samples: Sequence[ScoredSample], ks: Sequence[int]) -> dict[str, dict]:
    """The same metrics for each difficulty label, in label order."""
    groups: dict[str, list[ScoredSample]] = defaultdict(list)
    for s in samples:
        groups[s.difficulty].append(s)
    return {label: summarize(groups[label], ks) for label in sorted(groups, key=_natural_key)}


def _natural_key(label: str):
    # "numbers=10" after "numbers=9".
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", label) if part]


def control(samples: Sequence[ScoredSample]) -> float:
    """s1's Control: share of forced samples whose thinking stayed within their budget."""
    forced = [s for s in samples if s.budget is not None]
    if not forced:
        raise ValueError("control needs samples generated with a thinking budget")
    return sum(s.thinking_tokens <= s.budget for s in forced) / len(forced)


def scaling(curve: Sequence[dict]) -> float | None:
    """s1's Scaling: the average slope of accuracy against thinking tokens over all pairs of
    budget points, in accuracy per 1,000 thinking tokens (mean thinking tokens on the x axis,
    as in s1's figures). None with fewer than two points of distinct thinking length."""
    slopes = []
    for i, a in enumerate(curve):
        for b in curve[i + 1 :]:
            dx = b["mean_thinking_tokens"] - a["mean_thinking_tokens"]
            if dx != 0:
                slopes.append((b["accuracy"] - a["accuracy"]) / dx * 1000)
    return sum(slopes) / len(slopes) if slopes else None


def budget_summary(per_budget: dict[int, dict], samples: Sequence[ScoredSample]) -> dict:
    """The scaling curve and s1's three numbers (control, scaling, performance)."""
    curve = [
        {
            "thinking_tokens": budget,
            "accuracy": per_budget[budget]["accuracy"],
            "mean_thinking_tokens": per_budget[budget]["mean_thinking_tokens"],
        }
        for budget in sorted(per_budget)
    ]
    return {
        "budget_curve": curve,
        "control": control(samples),
        "scaling": scaling(curve),
        "performance": max(point["accuracy"] for point in curve),
    }

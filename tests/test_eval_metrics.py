"""pass@k against brute force, the summaries, and s1's control / scaling / performance."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyzero.eval.metrics import (
    ScoredSample,
    budget_summary,
    by_difficulty,
    control,
    default_ks,
    pass_at_k,
    percentiles,
    scaling,
    summarize,
)


def brute_force_pass_at_k(outcomes: list[bool], k: int) -> float:
    """Share of all k-subsets of the samples that contain a correct one."""
    subsets = list(itertools.combinations(outcomes, k))
    return sum(any(subset) for subset in subsets) / len(subsets)


@given(st.lists(st.booleans(), min_size=1, max_size=10), st.data())
def test_pass_at_k_equals_brute_force_enumeration(outcomes, data):
    k = data.draw(st.integers(1, len(outcomes)))
    assert pass_at_k(len(outcomes), sum(outcomes), k) == pytest.approx(brute_force_pass_at_k(outcomes, k), abs=1e-12)


def test_pass_at_k_edges_and_errors():
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 5, 1) == 1.0
    assert pass_at_k(4, 1, 1) == 0.25
    assert pass_at_k(4, 2, 3) == 1.0  # any 3 of 4 include one of the 2 correct
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(4, 1, 5)


def test_default_ks():
    assert default_ks(1) == [1]
    assert default_ks(8) == [1, 2, 4, 8]
    assert default_ks(6) == [1, 2, 4, 6]


def test_percentiles_are_nearest_rank():
    stats = percentiles(list(range(1, 101)))
    assert stats == {"mean": 50.5, "p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0}
    assert percentiles([7]) == {"mean": 7.0, "p50": 7.0, "p90": 7.0, "p99": 7.0, "max": 7.0}


def sample(problem, i, acc, *, budget=None, difficulty="3 numbers", response=10, thinking=5, has_answer=1.0):
    return ScoredSample(problem, i, budget, difficulty, float(acc), 1.0 if acc else 0.1, has_answer, response, thinking)


def test_summarize_accuracy_pass_at_k_format_and_lengths():
    samples = [sample(0, i, acc) for i, acc in enumerate([1, 0, 0, 0])]
    samples += [sample(1, i, 0, has_answer=0.0, response=30, thinking=20) for i in range(4)]
    result = summarize(samples, [1, 2, 4])
    assert result["problems"] == 2 and result["samples_per_problem"] == 4
    assert result["accuracy"] == 1 / 8
    assert result["pass_at_k"] == {"1": 0.125, "2": 0.25, "4": 0.5}
    assert result["format_rate"] == 0.5
    assert result["mean_response_tokens"] == 20.0
    assert result["thinking_tokens_stats"]["max"] == 20.0


def test_summarize_refuses_ragged_samples():
    with pytest.raises(ValueError, match="same number of samples"):
        summarize([sample(0, 0, 1), sample(0, 1, 1), sample(1, 0, 0)], [1])


def test_breakdown_by_difficulty_in_natural_order():
    samples = [sample(0, 0, 1, difficulty="10 numbers"), sample(1, 0, 0, difficulty="3 numbers")]
    samples.append(sample(2, 0, 1, difficulty="3 numbers"))
    result = by_difficulty(samples, [1])
    assert list(result) == ["3 numbers", "10 numbers"]
    assert result["3 numbers"]["accuracy"] == 0.5 and result["3 numbers"]["problems"] == 2


def test_s1_control_scaling_performance():
    samples = [sample(0, 0, 1, budget=100, thinking=100), sample(1, 0, 0, budget=100, thinking=101)]
    assert control(samples) == 0.5
    curve = [
        {"thinking_tokens": 100, "accuracy": 0.2, "mean_thinking_tokens": 100.0},
        {"thinking_tokens": 200, "accuracy": 0.4, "mean_thinking_tokens": 200.0},
        {"thinking_tokens": 400, "accuracy": 0.4, "mean_thinking_tokens": 300.0},
    ]
    # Pairwise slopes per 1,000 tokens: (0.2/100, 0.2/200, 0/100) * 1000 = 2, 1, 0 -> mean 1.
    assert scaling(curve) == pytest.approx(1.0)
    assert scaling(curve[:1]) is None
    assert scaling([dict(curve[0], thinking_tokens=b) for b in (1, 2)]) is None  # no distinct lengths
    per_budget = {p["thinking_tokens"]: p for p in reversed(curve)}
    result = budget_summary(per_budget, [sample(0, 0, 1, budget=100, thinking=90)])
    assert [p["thinking_tokens"] for p in result["budget_curve"]] == [100, 200, 400]
    assert result["performance"] == 0.4 and result["control"] == 1.0
    assert result["scaling"] == pytest.approx(1.0)

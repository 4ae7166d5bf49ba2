"""Compute-optimal strategy per difficulty bin (Snell et al. 2024, arXiv 2408.03314)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from oomlab.analysis.difficulty import bin_by_pass1, compute_optimal_by_difficulty
from oomlab.errors import ConfigError


def test_quantile_bins_are_equal_count_and_ordered_hardest_first():
    p = np.linspace(0, 1, 100)
    bins = bin_by_pass1(p, 5)
    assert bins.counts == (20, 20, 20, 20, 20)
    assert np.all(np.diff([p[bins.assignment == b].mean() for b in range(5)]) > 0)
    assert bins.labels[0].startswith("pass@1 0.00")


def test_tied_quantile_edges_merge():
    p = np.r_[np.zeros(60), np.linspace(0.1, 1, 40)]  # 60% unsolved: quantile edges coincide at 0
    bins = bin_by_pass1(p, 5)
    assert len(bins.counts) < 5
    assert sum(bins.counts) == 100
    assert bins.counts[0] == 60  # every unsolved problem in the hardest bin


def test_fixed_bins():
    p = np.array([0.0, 0.05, 0.3, 0.5, 0.99, 1.0])
    bins = bin_by_pass1(p, method="fixed", edges=[0, 0.1, 0.5, 1.0])
    assert bins.assignment.tolist() == [0, 0, 1, 2, 2, 2]
    empty_dropped = bin_by_pass1(np.array([0.0, 0.9]), method="fixed", edges=[0, 0.25, 0.5, 0.75, 1])
    assert empty_dropped.counts == (1, 1)


@pytest.mark.parametrize(
    "kwargs,match",
    [(dict(pass1=[1.5]), r"\[0, 1\]"), (dict(pass1=[0.5], method="deciles"), "unknown binning"),
     (dict(pass1=[0.5], method="fixed", edges=[0.6, 1.0]), "span"), (dict(pass1=[0.5], n_bins=0), "n_bins")],
)
def test_bad_binning(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        bin_by_pass1(**kwargs)


def _two_regimes():
    """'search' is best on hard problems, 'vote' on easy ones (Snell et al.'s finding, in miniature)."""
    rng = np.random.default_rng(0)
    p1 = np.r_[rng.uniform(0.0, 0.2, 100), rng.uniform(0.6, 1.0, 100)]
    ks = np.array([1, 4, 16])
    hard = p1[:, None] < 0.5
    search = np.where(hard, np.minimum(1, p1[:, None] + 0.1 * np.log2(ks)), p1[:, None])
    vote = np.where(hard, p1[:, None] * 0.5, 1 - (1 - p1[:, None]) ** ks)
    return p1, {"search": search, "vote": vote}, {"search": ks * 1e9, "vote": ks * 1e9}


def test_best_strategy_differs_by_bin_and_beats_any_single_one():
    p1, acc, comp = _two_regimes()
    bins = bin_by_pass1(p1, 2)
    res = compute_optimal_by_difficulty(acc, comp, bins, budgets=[1e9, 4e9, 16e9])
    assert [c.strategy for c in res.per_bin[0][1:]] == ["search", "search"]  # hard bin
    assert [c.strategy for c in res.per_bin[1][1:]] == ["vote", "vote"]  # easy bin
    assert all(g > 0.02 for g in res.gain[1:])
    assert res.oracle_difficulty
    json.dumps(res.to_dict())


@st.composite
def ladders(draw):
    n = draw(st.integers(5, 30))
    n_strat = draw(st.integers(1, 3))
    acc, comp = {}, {}
    for s in range(n_strat):
        rungs = draw(st.integers(1, 4))
        acc[f"s{s}"] = draw(arrays(float, (n, rungs), elements=st.floats(0, 1)))
        comp[f"s{s}"] = np.cumsum(draw(arrays(float, rungs, elements=st.floats(0.1, 10))))
    pass1 = draw(arrays(float, n, elements=st.floats(0, 1)))
    return pass1, acc, comp


@settings(max_examples=60, deadline=None)
@given(ladders(), st.integers(1, 4))
def test_choices_are_affordable_optimal_and_never_worse_than_single(data, n_bins):
    pass1, acc, comp = data
    bins = bin_by_pass1(pass1, n_bins)
    res = compute_optimal_by_difficulty(acc, comp, bins)
    for j, budget in enumerate(res.budgets):
        for b, row in enumerate(res.per_bin):
            choice = row[j]
            if choice.strategy is None:
                continue
            assert choice.compute <= budget * (1 + 1e-12)
            in_bin = bins.assignment == b
            brute = max(acc[s][in_bin, r].mean() for s in acc for r in range(acc[s].shape[1])
                        if comp[s][r] <= budget * (1 + 1e-12))
            assert choice.accuracy == pytest.approx(brute)
        assert res.gain[j] >= -1e-12
        assert res.oracle_binned_compute[j] <= budget * (1 + 1e-9)
        if not math.isnan(res.compute_savings[j]):
            assert res.compute_savings[j] >= 1 - 1e-9


def test_compute_savings_by_hand():
    """Hard problem needs the 4-unit rung, easy one is solved at 1 unit: matching the single
    policy's 100% at budget 4 costs the binned policy (4 + 1) / 2 = 2.5 units, a 1.6× saving."""
    acc = {"a": np.array([[0.0, 1.0], [1.0, 1.0]])}
    bins = bin_by_pass1(np.array([0.1, 0.9]), method="fixed", edges=[0, 0.5, 1])
    res = compute_optimal_by_difficulty(acc, {"a": [1.0, 4.0]}, bins)
    assert res.budgets == (1.0, 4.0)
    assert res.oracle_binned_accuracy == (0.5, 1.0)
    assert res.oracle_binned_compute == (1.0, 2.5)
    assert res.best_single[1].accuracy == 1.0 and res.gain[1] == 0.0
    assert res.compute_savings == (1.0, 1.6)
    assert [row[1].rung for row in res.per_bin] == [1, 0]


def test_one_bin_means_no_gain():
    p1, acc, comp = _two_regimes()
    res = compute_optimal_by_difficulty(acc, comp, bin_by_pass1(p1, 1))
    assert np.allclose(res.gain, 0.0)


def test_budget_below_every_rung():
    p1, acc, comp = _two_regimes()
    res = compute_optimal_by_difficulty(acc, comp, bin_by_pass1(p1, 2), budgets=[1e8])
    assert res.best_single[0].strategy is None
    assert math.isnan(res.oracle_binned_accuracy[0])


def test_bad_inputs():
    p1, acc, comp = _two_regimes()
    bins = bin_by_pass1(p1, 2)
    with pytest.raises(ConfigError, match="one value per rung"):
        compute_optimal_by_difficulty(acc, {"search": [1, 2], "vote": comp["vote"]}, bins)
    with pytest.raises(ConfigError, match="positive"):
        compute_optimal_by_difficulty(acc, comp, bins, budgets=[-1])
    with pytest.raises(ConfigError, match="no strategies"):
        compute_optimal_by_difficulty({}, {}, bins)

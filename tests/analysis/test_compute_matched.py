"""Compute-matched comparison (Snell et al. 2024, arXiv 2408.03314, §7)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oomlab.analysis.compute_matched import (
    ModelSpec,
    compare_across_ratios,
    compare_at_matched_flops,
    matched_test_time_multiplier,
)
from oomlab.errors import ConfigError

TOKENS = [500, 1000, 2000, 4000, 8000, 16000, 32000]
CURVE = [0.20, 0.30, 0.40, 0.47, 0.52, 0.55, 0.57]
SMALL = ModelSpec("small", 1e9, 1e12)
LARGE = ModelSpec("large", 14e9, 1e12)


@settings(max_examples=50, deadline=None)
@given(size_ratio=st.floats(1.0, 100.0), ratio=st.floats(1e-3, 1e3), tokens=st.floats(10, 1e4))
def test_same_data_reduces_to_snell_multiplier(size_ratio, ratio, tokens):
    """Equal D_pretrain, small ladder starting at the large model's greedy tokens:
    t*/T = M + 3(D_pretrain/D_inference)(M - 1) (Snell et al. §7)."""
    small = ModelSpec("s", 1e9, 2e12)
    large = ModelSpec("l", 1e9 * size_ratio, 2e12)
    res = compare_at_matched_flops(small, [tokens, tokens * 1e9], [0.1, 0.2], large, 0.3, tokens,
                                   ratio=ratio, n_boot=0)
    assert res.test_time_multiplier == pytest.approx(matched_test_time_multiplier(size_ratio, ratio), rel=1e-9)


@settings(max_examples=50, deadline=None)
@given(ratio=st.floats(1e-3, 1e3), ds=st.floats(1e10, 1e13))
def test_both_sides_spend_the_same_flops(ratio, ds):
    small = ModelSpec("s", 1e9, ds)
    res = compare_at_matched_flops(small, TOKENS, CURVE, LARGE, 0.45, 500, ratio=ratio, n_boot=0)
    small_total = small.train_flops + 2 * small.params * res.small_tokens_affordable * res.queries
    large_total = LARGE.train_flops + 2 * LARGE.params * 500 * res.queries
    assert small_total == pytest.approx(res.total_flops, rel=1e-9)
    assert large_total == pytest.approx(res.total_flops, rel=1e-9)
    assert res.ratio == pytest.approx(res.queries * 500 / LARGE.train_tokens, rel=1e-12)


def test_queries_and_ratio_agree():
    by_ratio = compare_at_matched_flops(SMALL, TOKENS, CURVE, LARGE, 0.45, 500, ratio=2.0, n_boot=0)
    by_queries = compare_at_matched_flops(SMALL, TOKENS, CURVE, LARGE, 0.45, 500, queries=by_ratio.queries, n_boot=0)
    assert by_queries.ratio == pytest.approx(2.0)
    assert by_queries.small_accuracy == pytest.approx(by_ratio.small_accuracy)


def test_small_wins_at_low_ratio_and_loses_at_high():
    """Snell §7: test-time compute pays when inference load is light (R << 1), not when heavy."""
    results = compare_across_ratios(SMALL, TOKENS, CURVE, LARGE, 0.53, 500, ratios=(0.01, 1.0, 100.0), n_boot=0)
    accs = [r.small_accuracy for r in results]
    assert accs[0] >= accs[1] >= accs[2]
    assert results[0].winner == "small"
    assert results[-1].winner == "large"
    assert results[0].status == "capped at largest rung" and "lower bound" in results[0].note


def test_between_rungs_mixes_linearly_in_tokens():
    # Budget of 3000 tokens lies halfway between the 2000 and 4000 rungs.
    small = ModelSpec("s", 1e9, 1e12)
    large = ModelSpec("l", 1e9, 1e12)  # same size and data: t* = T_large exactly
    res = compare_at_matched_flops(small, TOKENS, CURVE, large, 0.3, 3000, ratio=1.0, n_boot=0)
    assert res.small_tokens_affordable == pytest.approx(3000)
    assert res.small_accuracy == pytest.approx(0.5 * (0.40 + 0.47))
    assert res.status == "interpolated"


def test_cannot_afford_cheapest_rung():
    small = ModelSpec("s", 1e9, 1e14)  # trained far longer than the large model
    res = compare_at_matched_flops(small, TOKENS, CURVE, LARGE, 0.3, 500, ratio=1.0, n_boot=0)
    assert res.status == "cannot afford cheapest rung"
    assert res.winner == "large"
    assert math.isnan(res.small_accuracy)
    assert "below its cheapest rung" in res.note


def test_paired_bootstrap_decides_the_winner():
    rng = np.random.default_rng(0)
    n = 400
    small_pp = rng.binomial(1, np.broadcast_to(np.array(CURVE), (n, len(CURVE)))).astype(float)
    big_better = rng.binomial(1, 0.75, n).astype(float)
    big_same = small_pp[:, 3].copy()
    at_r = dict(ratio=1.0, n_boot=300, seed=1)
    small_1x = ModelSpec("s", 1e9, 1e12)
    large_1x = ModelSpec("l", 1e9, 1e12)
    clear = compare_at_matched_flops(small_1x, TOKENS, small_pp, large_1x, big_better, 4000, **at_r)
    assert clear.winner == "large" and clear.difference_interval[1] < 0
    tie = compare_at_matched_flops(small_1x, TOKENS, small_pp, large_1x, big_same, 4000, **at_r)
    assert tie.difference == pytest.approx(0.0)
    assert tie.winner == "tie"
    lo, hi = tie.difference_interval
    assert lo == pytest.approx(0.0) and hi == pytest.approx(0.0)  # identical per-problem answers
    json.dumps(clear.to_dict())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(), "exactly one"),
        (dict(ratio=1.0, queries=10.0), "exactly one"),
        (dict(ratio=-1.0), "positive"),
        (dict(queries=0.0), "positive"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        compare_at_matched_flops(SMALL, TOKENS, CURVE, LARGE, 0.45, 500, **kwargs)


def test_bad_inputs():
    with pytest.raises(ConfigError, match="increasing"):
        compare_at_matched_flops(SMALL, [2, 1], [0.1, 0.2], LARGE, 0.4, 500, ratio=1.0)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        compare_at_matched_flops(SMALL, TOKENS, [1.2] * 7, LARGE, 0.4, 500, ratio=1.0)
    with pytest.raises(ConfigError, match="positive"):
        ModelSpec("x", 0, 1e12)


# ----------------------------------------------------------------------------- unpaired (issue 10, item 1)
SAME = ModelSpec("m", 1e9, 1e12)  # both sides the same size and data: the small side spends the large's tokens


def _small_matrix(p: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """One rung of 0/1 outcomes at rate p (tokens 1000), padded with a dearer rung."""
    col = (rng.random(n) < p).astype(float)
    return np.column_stack([col, col])


def test_unpaired_scalar_large_side_does_not_reverse_the_winner():
    """Audit case: small 8.9%, large 90% on other problems. Today the 'difference' interval was the small
    model's own accuracy interval ([+5.6, +12.1] points) and the winner 'small'."""
    rng = np.random.default_rng(3)
    small = _small_matrix(0.089, 400, rng)
    for large_acc in (0.90, (rng.random(300) < 0.90).astype(float)):
        res = compare_at_matched_flops(SAME, [1000, 2000], small, SAME, large_acc, 1000, ratio=1.0,
                                       n_boot=500, paired=False)
        lo, hi = res.difference_interval
        assert res.winner == "large"
        assert hi < 0 and lo <= 0.089 - 0.90 <= hi  # contains the true difference, -81 points
        assert res.difference == pytest.approx(res.small_accuracy - res.large_accuracy)
        assert not res.paired and "unpaired" in res.interval_method


def test_unpaired_interval_covers_the_true_difference():
    """Two-sample interval on different problems: nominal 95%, at least 0.92 in 300 replications."""
    p_small, p_large, hits, reps = 0.35, 0.45, 0, 300
    for seed in range(reps):
        rng = np.random.default_rng(seed)
        small = _small_matrix(p_small, 120, rng)
        large = (rng.random(100) < p_large).astype(float)
        res = compare_at_matched_flops(SAME, [1000, 2000], small, SAME, large, 1000, ratio=1.0, n_boot=200,
                                       seed=seed, paired=False)
        lo, hi = res.difference_interval
        hits += lo <= p_small - p_large <= hi
    assert hits / reps >= 0.92


def test_winner_only_when_the_interval_excludes_zero():
    rng = np.random.default_rng(5)
    small = _small_matrix(0.50, 60, rng)
    large = (rng.random(60) < 0.55).astype(float)
    res = compare_at_matched_flops(SAME, [1000, 2000], small, SAME, large, 1000, ratio=1.0, n_boot=300,
                                   paired=False)
    lo, hi = res.difference_interval
    assert lo < 0 < hi and res.winner == "no clear winner"
    # a stated tolerance: a winner must clear it, an interval inside it is a tie
    wide = compare_at_matched_flops(SAME, [1000, 2000], small, SAME, large, 1000, ratio=1.0, n_boot=300,
                                    paired=False, tie_tolerance=0.5)
    assert wide.winner == "tie" and wide.tolerance == 0.5


def test_equal_sizes_are_paired_only_when_told_so():
    rng = np.random.default_rng(6)
    small = _small_matrix(0.4, 80, rng)
    large = (rng.random(80) < 0.4).astype(float)
    kw = dict(ratio=1.0, n_boot=200)
    assert compare_at_matched_flops(SAME, [1000, 2000], small, SAME, large, 1000, **kw).paired
    unpaired = compare_at_matched_flops(SAME, [1000, 2000], small, SAME, large, 1000, paired=False, **kw)
    assert not unpaired.paired and "MOVER" in unpaired.interval_method
    with pytest.raises(ConfigError, match="paired"):
        compare_at_matched_flops(SAME, [1000, 2000], small, SAME, 0.4, 1000, paired=True, **kw)


def test_scalar_with_its_problem_count_gets_an_interval():
    rng = np.random.default_rng(7)
    small = _small_matrix(0.3, 200, rng)
    exact = compare_at_matched_flops(SAME, [1000, 2000], small, SAME, 0.35, 1000, ratio=1.0, n_boot=300)
    counted = compare_at_matched_flops(SAME, [1000, 2000], small, SAME, 0.35, 1000, ratio=1.0, n_boot=300,
                                       large_n=50)
    w = lambda r: r.difference_interval[1] - r.difference_interval[0]  # noqa: E731
    assert w(counted) > w(exact)  # 50 problems of uncertainty on the large side widen it
    assert "exact" in exact.interval_method and "50 problems" in counted.interval_method

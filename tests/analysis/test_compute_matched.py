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

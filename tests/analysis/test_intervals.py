"""Intervals for 0/1 columns (Wilson, not the percentile bootstrap) and the unpaired difference (MOVER).

The audit's cases: at p = 0.02 on 100 problems the percentile bootstrap covered 0.88, and at 0 of 30
it gives [0, 0]. A column of one 0/1 outcome per problem (greedy, re-run strategies) is a binomial
count and gets an interval made for proportions.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from oomlab.analysis.bootstrap import bootstrap_ci
from oomlab.analysis.curves import run_curves
from oomlab.analysis.intervals import (
    BOOTSTRAP,
    WILSON,
    MeanInterval,
    column_intervals,
    describe_methods,
    mean_interval,
    mover_difference,
    wilson_interval,
)
from oomlab.store import Store


def exact_coverage(n: int, p: float, level: float = 0.95) -> float:
    """P(interval covers p) summed over the binomial distribution of the count."""
    xs = np.arange(n + 1)
    hit = [lo <= p <= hi for lo, hi in (wilson_interval(x, n, level) for x in xs)]
    return float(binom.pmf(xs, n, p)[hit].sum())


def test_two_of_a_hundred_has_a_real_interval():
    col = np.zeros((100, 1))
    col[:2] = 1.0
    mean, lo, hi, methods = column_intervals(col)
    assert methods == [WILSON]
    assert mean[0] == pytest.approx(0.02)
    assert 0.0 < lo[0] < 0.02 < hi[0] < 0.1
    assert hi[0] - lo[0] > 0.03


def test_zero_of_thirty_is_not_zero_width():
    lo, hi = wilson_interval(0, 30)
    assert lo == 0.0 and hi > 0.09  # 0 of 30 is consistent with ~10%
    # today's percentile bootstrap: every resample of 30 zeros is 0
    assert bootstrap_ci(np.zeros(30))[1:] == (0.0, 0.0)


@pytest.mark.parametrize("n,p", [(100, 0.02), (30, 0.05), (100, 0.01), (200, 0.99)])
def test_wilson_coverage_by_simulation(n, p):
    rng = np.random.default_rng(int(1000 * p) + n)
    reps = 2000
    hits = 0
    for _ in range(reps):
        x = int((rng.random(n) < p).sum())
        lo, hi = wilson_interval(x, n)
        hits += lo <= p <= hi
    assert hits / reps >= 0.93
    assert exact_coverage(n, p) >= 0.93


def test_percentile_bootstrap_undercovers_where_wilson_does_not():
    """The defect itself, at p = 0.05 on 30 problems: bootstrap ~0.78 (an exact sum over counts)."""
    n, p = 30, 0.05
    xs = np.arange(n + 1)
    boot_hit = []
    for x in xs:
        _, lo, hi = bootstrap_ci(np.r_[np.ones(x), np.zeros(n - x)], n_boot=400)
        boot_hit.append(lo <= p <= hi)
    assert binom.pmf(xs, n, p)[boot_hit].sum() < 0.9
    assert exact_coverage(n, p) >= 0.93


def test_non_binary_columns_keep_the_bootstrap():
    rng = np.random.default_rng(0)
    table = np.column_stack([rng.integers(0, 2, 50), rng.random(50)])
    mean, lo, hi, methods = column_intervals(table, n_boot=300)
    assert methods == [WILSON, BOOTSTRAP]
    _, blo, bhi = bootstrap_ci(table, n_boot=300)
    assert (lo[1], hi[1]) == (blo[1], bhi[1])
    assert "0/1" in describe_methods(methods) and BOOTSTRAP in describe_methods(methods)


def test_mover_is_newcombe_for_two_proportions():
    """Newcombe 1998, Table II, example (a): 56/70 vs 48/80 -> difference 0.2, 95% CI [0.0524, 0.3339]."""
    a = MeanInterval(56 / 70, *wilson_interval(56, 70), WILSON)
    b = MeanInterval(48 / 80, *wilson_interval(48, 80), WILSON)
    lo, hi = mover_difference(a, b)
    assert lo == pytest.approx(0.0524, abs=5e-4) and hi == pytest.approx(0.3339, abs=5e-4)


def test_mean_interval_names_its_method():
    assert mean_interval(np.array([0.0, 1.0, 1.0])).method == WILSON
    assert mean_interval(np.array([0.25, 1.0, 0.5]), n_boot=100).method == BOOTSTRAP


def test_run_curves_give_greedy_rungs_a_wilson_interval(scripted_db):
    """Through a real sweep and Store: a greedy column that is all wrong still has an upper bound."""
    db, make = scripted_db
    run = make("hopeless", 0.0, problems=30)
    store = Store(db)
    try:
        curves = {c.key: c for c in run_curves(store, run, n_boot=200)}
    finally:
        store.close()
    greedy = curves["greedy"].rungs[0]
    assert greedy.accuracy == 0.0 and greedy.interval == WILSON
    assert greedy.lo == 0.0 and greedy.hi > 0.09
    assert curves["greedy"].to_dict()["rungs"][0]["interval"] == WILSON

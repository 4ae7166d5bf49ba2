"""The percentile bootstrap over problems: shape, determinism, width, and coverage on Bernoulli data."""

from __future__ import annotations

import numpy as np
import pytest

from oomlab.analysis.bootstrap import bootstrap_ci


def test_interval_contains_mean_and_is_deterministic():
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = rng.random(40)
        mean, lo, hi = bootstrap_ci(x, seed=3)
        assert lo <= mean <= hi
        assert mean == pytest.approx(x.mean())
        assert bootstrap_ci(x, seed=3) == (mean, lo, hi)
    assert bootstrap_ci(x, seed=4) != bootstrap_ci(x, seed=3)


def test_interval_narrows_with_more_problems():
    rng = np.random.default_rng(2)
    widths = []
    for n in (20, 200, 2000):
        _, lo, hi = bootstrap_ci(rng.random(n) < 0.4, n_boot=1000)
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    assert widths[1] / widths[2] == pytest.approx(np.sqrt(10), rel=0.3)  # width ~ 1/sqrt(n)


def test_two_dimensional_input_is_paired_per_column():
    rng = np.random.default_rng(3)
    a = rng.random(50)
    table = np.column_stack([a, a + 1.0, 2 * a])
    mean, lo, hi = bootstrap_ci(table, n_boot=500, seed=7)
    assert mean.shape == lo.shape == hi.shape == (3,)
    m0, lo0, hi0 = bootstrap_ci(a, n_boot=500, seed=7)
    # the same problems are resampled for every column, so shifted/scaled columns move in lockstep
    assert (mean[0], lo[0], hi[0]) == pytest.approx((m0, lo0, hi0))
    assert lo[1] == pytest.approx(lo0 + 1.0) and hi[1] == pytest.approx(hi0 + 1.0)
    assert lo[2] == pytest.approx(2 * lo0) and hi[2] == pytest.approx(2 * hi0)


def test_coverage_on_bernoulli_data_is_near_nominal():
    p, n_problems, reps = 0.3, 60, 200
    covered = 0
    for rep in range(reps):
        data = np.random.default_rng(1000 + rep).random(n_problems) < p
        _, lo, hi = bootstrap_ci(data, level=0.95, n_boot=400, seed=rep)
        covered += lo <= p <= hi
    assert 0.88 <= covered / reps <= 0.99


def test_bad_input():
    for bad in (np.array([]), np.zeros((2, 2, 2))):
        with pytest.raises(ValueError):
            bootstrap_ci(bad)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 0.0], level=1.0)

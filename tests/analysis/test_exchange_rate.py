"""Train↔test exchange rate: iso-accuracy points and the slope.

Jones 2021 (arXiv 2104.03113, §IV-C) found 10× train-time compute worth about 15× test-time
compute on Hex. His agents and curves are not available here, so no test claims to
reproduce his number; instead, synthetic models are built whose iso-accuracy lines have a
known slope — set to -log10(15), Jones's value — and the estimator must recover it.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

from oomlab.analysis.exchange_rate import (
    ModelRun,
    exchange_rate,
    needed_test_flops,
)
from oomlab.report.exchange_plots import plot_iso_accuracy, plot_two_panel
from oomlab.errors import FitError

TEST = np.logspace(9, 14, 11)
TRAIN_LOG10 = [19.0, 19.5, 20.0, 20.5, 21.0]
JONES_SLOPE = -math.log10(15)


def models_with_slope(slope: float, rng: np.random.Generator, n_problems: int = 300) -> list[ModelRun]:
    """accuracy = sigmoid(1.2 (-slope (log10 train - 20) + log10 test - 11.5)); iso-accuracy
    lines are log10 test = const + slope * log10 train, exactly."""
    runs = []
    for i, lt in enumerate(TRAIN_LOG10):
        mean = expit(1.2 * (-slope * (lt - 20.0) + np.log10(TEST) - 11.5))
        pp = rng.binomial(1, np.broadcast_to(mean, (n_problems, TEST.size))).astype(float)
        runs.append(ModelRun(f"m{i}", 10.0**lt, TEST, pp))
    return runs


def test_recovers_jones_like_slope():
    res = exchange_rate(models_with_slope(JONES_SLOPE, np.random.default_rng(0)), n_boot=200)
    lo, hi = res.slope_interval
    assert lo <= JONES_SLOPE <= hi
    assert res.slope == pytest.approx(JONES_SLOPE, abs=0.1)
    assert res.test_factor_per_10x_train == pytest.approx(15, rel=0.25)
    assert res.interval_method.startswith("bootstrap over problems (paired)")
    json.dumps(res.to_dict())


@settings(max_examples=3, deadline=None, derandomize=True)
@given(slope=st.floats(-2.0, -0.3))
def test_slope_interval_covers_truth_at_nominal_rate(slope):
    """95% bootstrap interval: contains the true slope in >= 80% of 25 seeded replications."""
    reps, hits = 25, 0
    for seed in range(reps):
        res = exchange_rate(models_with_slope(slope, np.random.default_rng(seed), 200), n_boot=60, seed=seed)
        lo, hi = res.slope_interval
        hits += lo <= slope <= hi
    assert hits / reps >= 0.80


def test_means_only_give_ols_interval():
    runs = [ModelRun(m.name, m.train_flops, m.test_flops, m.mean_curve)
            for m in models_with_slope(-1.0, np.random.default_rng(1))]
    res = exchange_rate(runs)
    assert res.interval_method.startswith("OLS t interval")
    assert res.slope_interval[0] < res.slope < res.slope_interval[1]
    assert res.slope == pytest.approx(-1.0, abs=0.15)


def test_needed_test_flops_interpolates_in_log_compute():
    x = [1e9, 1e10, 1e11]
    assert needed_test_flops(x, [0.1, 0.3, 0.5], 0.2) == pytest.approx(10**9.5)
    assert needed_test_flops(x, [0.1, 0.3, 0.5], 0.4) == pytest.approx(10**10.5)
    assert math.isnan(needed_test_flops(x, [0.1, 0.3, 0.5], 0.6))  # never reached
    assert math.isnan(needed_test_flops(x, [0.1, 0.3, 0.5], 0.05))  # censored at the cheapest rung
    assert needed_test_flops(x, [0.1, 0.35, 0.3], 0.32) == pytest.approx(10 ** (9 + 0.22 / 0.25))


def test_refuses_without_two_training_budgets():
    run = ModelRun("a", 1e20, TEST, np.linspace(0.1, 0.9, TEST.size))
    with pytest.raises(FitError, match="two models"):
        exchange_rate([run])
    with pytest.raises(FitError, match="two models"):
        exchange_rate([run, ModelRun("b", 1e20, TEST, np.linspace(0.2, 0.9, TEST.size))])


def test_refuses_when_curves_do_not_overlap():
    weak = ModelRun("weak", 1e19, TEST, np.linspace(0.01, 0.2, TEST.size))
    strong = ModelRun("strong", 1e21, TEST, np.linspace(0.6, 0.95, TEST.size))
    with pytest.raises(FitError, match="do not overlap"):
        exchange_rate([weak, strong], targets=[0.3, 0.5])


def test_figures_are_written(tmp_path):
    runs = models_with_slope(JONES_SLOPE, np.random.default_rng(2))
    res = exchange_rate(runs, n_boot=50)
    for out in (plot_two_panel(runs, str(tmp_path / "two.png")), plot_iso_accuracy(res, str(tmp_path / "iso.png"))):
        with open(out, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"

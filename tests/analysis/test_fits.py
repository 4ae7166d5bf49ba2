"""Curve fits: parameter recovery at the nominal rate, inversion, refusals, a published curve.

Synthetic data: every problem's accuracy at rung j is Binomial(20, p_ij)/20 with
p_ij = m_j ± 0.5·min(m_j, 1 - m_j) (sign drawn once per problem, so rows are correlated
across rungs and the population mean curve is exactly the law m_j). Problems are rows,
as in a real sweep, and the bootstrap resamples rows.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oomlab.analysis.scaling_laws import make_law
from oomlab.analysis.curve_fitting import (
    fit_coverage,
    fit_curve,
    fit_error_power_law,
    fit_logistic,
    fit_mean_curve,
)
from oomlab.report.fit_plots import plot_fit
from oomlab.errors import ConfigError, FitError

LADDER = np.logspace(9, 14, 11)  # FLOPs per problem, half-OOM steps
SAMPLES = 2.0 ** np.arange(11)  # k = 1 .. 1024
SHORT = np.logspace(9, 12, 7)


def per_problem(mean: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    m = np.asarray(mean)[None, :]
    sign = rng.choice([-1.0, 1.0], size=(n, 1))
    p = m + 0.5 * sign * np.minimum(m, 1 - m)
    return rng.binomial(20, np.broadcast_to(p, (n, m.shape[1]))) / 20


def truth_curve(law: str, x: np.ndarray, params: dict[str, float]) -> np.ndarray:
    fit_law = make_law(law, x, None)
    return fit_law.predict(x, np.array([params[n] for n in fit_law.param_names]))


def coverage_rates(law, x, params, reps=50, n_problems=150, n_boot=100):
    """Share of seeded replications whose 95% and 50% intervals contain each true parameter."""
    mean = truth_curve(law, x, params)
    hit95 = dict.fromkeys(params, 0)
    hit50 = dict.fromkeys(params, 0)
    for seed in range(reps):
        data = per_problem(mean, n_problems, np.random.default_rng(seed))
        fit = fit_curve(law, x, data, n_boot=n_boot, seed=seed, holdout=0)  # the check is tested below
        for name, value in params.items():
            lo, hi = fit.intervals[name]
            hit95[name] += lo <= value <= hi
            lo, hi = fit.interval(name, 0.5)
            hit50[name] += lo <= value <= hi
    return {k: v / reps for k, v in hit95.items()}, {k: v / reps for k, v in hit50.items()}


def assert_calibrated(rate95, rate50):
    # Nominal 95%: at least 80% of 50 replications (a percentile bootstrap over 150
    # problems runs ~91-95% in longer simulations; 40/50 is ~3 sd below that).
    # Nominal 50%: between 25% and 75% (±3.5 sd of 50 draws), so an interval that is
    # merely too wide fails here even though it passes the 95% check.
    for name in rate95:
        assert rate95[name] >= 0.80, (name, rate95, rate50)
        assert 0.25 <= rate50[name] <= 0.75, (name, rate95, rate50)


# ---------------------------------------------------------------- nominal coverage
@settings(max_examples=2, deadline=None, derandomize=True)
@given(
    floor=st.floats(0.05, 0.3),
    ceiling=st.floats(0.6, 0.95),
    slope=st.floats(1.5, 4.0),
    midpoint=st.floats(10.5, 12.5),
)
def test_logistic_intervals_cover_truth_at_nominal_rate(floor, ceiling, slope, midpoint):
    params = {"floor": floor, "ceiling": ceiling, "slope_per_oom": slope, "midpoint_log10": midpoint}
    assert_calibrated(*coverage_rates("logistic", LADDER, params))


@settings(max_examples=3, deadline=None, derandomize=True)
@given(a=st.floats(-3.0, -0.3), b=st.floats(-0.7, -0.15))
def test_coverage_law_intervals_cover_truth_at_nominal_rate(a, b):
    assert_calibrated(*coverage_rates("coverage", SAMPLES, {"a": a, "b": b}))


@settings(max_examples=3, deadline=None, derandomize=True)
@given(error_at_first_rung=st.floats(0.5, 0.95), alpha=st.floats(0.05, 0.4))
def test_error_power_law_intervals_cover_truth_at_nominal_rate(error_at_first_rung, alpha):
    ref = 10.0 ** np.mean(np.log10(SHORT))
    params = {"error_at_ref": error_at_first_rung * (ref / SHORT[0]) ** -alpha, "alpha": alpha}
    assert_calibrated(*coverage_rates("error-power-law", SHORT, params))


# ---------------------------------------------------------------- point recovery & inversion
@pytest.mark.parametrize(
    "law,x,params,tol",
    [
        ("logistic", LADDER, {"floor": 0.1, "ceiling": 0.8, "slope_per_oom": 2.0, "midpoint_log10": 11.5}, 0.05),
        ("coverage", SAMPLES, {"a": -2.0, "b": -0.4}, 0.05),
        ("error-power-law", SHORT, {"error_at_ref": 0.4, "alpha": 0.2}, 0.05),
    ],
)
def test_large_sample_recovers_parameters(law, x, params, tol):
    data = per_problem(truth_curve(law, x, params), 4000, np.random.default_rng(7))
    fit = fit_curve(law, x, data, n_boot=50)
    for name, value in params.items():
        assert fit.params[name] == pytest.approx(value, rel=tol, abs=tol / 10), name
    assert fit.r2 > 0.99
    assert fit.rmse < 0.01


@pytest.fixture(scope="module")
def logistic_fit():
    params = {"floor": 0.1, "ceiling": 0.8, "slope_per_oom": 2.0, "midpoint_log10": 11.5}
    data = per_problem(truth_curve("logistic", LADDER, params), 200, np.random.default_rng(1))
    return fit_logistic(LADDER, data, n_boot=200, seed=3)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(target=st.floats(0.15, 0.75))
def test_compute_for_inverts_predict(logistic_fit, target):
    value, lo, hi = logistic_fit.compute_for(target)
    assert logistic_fit.predict(value) == pytest.approx(target, abs=1e-9)
    assert lo <= value <= hi


@pytest.mark.parametrize("law", ["coverage", "error-power-law"])
def test_compute_for_inverts_predict_power_laws(law):
    x = SAMPLES if law == "coverage" else SHORT
    params = {"a": -2.0, "b": -0.4} if law == "coverage" else {"error_at_ref": 0.4, "alpha": 0.2}
    data = per_problem(truth_curve(law, x, params), 200, np.random.default_rng(2))
    fit = fit_curve(law, x, data, n_boot=100)
    for target in (0.3, 0.5, 0.7):
        value, lo, hi = fit.compute_for(target)
        assert fit.predict(value) == pytest.approx(target, abs=1e-9)
        assert lo <= value <= hi


def test_prediction_band_contains_curve(logistic_fit):
    lo, hi = logistic_fit.predict_interval(LADDER)
    assert np.all(lo <= logistic_fit.predict(LADDER) + 1e-12)
    assert np.all(logistic_fit.predict(LADDER) <= hi + 1e-12)
    assert np.all(hi - lo < 0.1)


def test_power_law_band_widens_away_from_the_data():
    data = per_problem(truth_curve("error-power-law", SHORT, {"error_at_ref": 0.4, "alpha": 0.2}), 200,
                       np.random.default_rng(6))
    fit = fit_error_power_law(SHORT, data, n_boot=100)
    xs = [10**10.5, 10**12.5, 10**13.5]
    lo, hi = fit.predict_interval(xs)
    width = (hi - lo) / (1 - fit.predict(xs))  # relative to the error, which shrinks
    assert width[0] < width[1] < width[2]


def test_same_seed_same_intervals():
    data = per_problem(truth_curve("coverage", SAMPLES, {"a": -2.0, "b": -0.4}), 100, np.random.default_rng(0))
    a = fit_coverage(SAMPLES, data, n_boot=50, seed=5)
    b = fit_coverage(SAMPLES, data, n_boot=50, seed=5)
    assert a.intervals == b.intervals


def test_to_dict_is_json(logistic_fit):
    d = json.loads(json.dumps(logistic_fit.to_dict()))
    assert d["law"] == "logistic"
    assert set(d["params"]) == {"floor", "ceiling", "slope_per_oom", "midpoint_log10"}
    assert d["goodness_of_fit"]["on"].startswith("mean curve")
    assert d["n_boot"] == 200


# ---------------------------------------------------------------- refusals
def test_refuses_target_above_ceiling(logistic_fit):
    with pytest.raises(FitError, match="ceiling"):
        logistic_fit.compute_for(0.9)


def test_refuses_target_below_floor(logistic_fit):
    with pytest.raises(FitError, match="floor"):
        logistic_fit.compute_for(0.05)


def test_refuses_extrapolation_beyond_limit():
    data = per_problem(truth_curve("error-power-law", SHORT, {"error_at_ref": 0.4, "alpha": 0.2}), 200,
                       np.random.default_rng(4))
    fit = fit_error_power_law(SHORT, data, n_boot=50)
    with pytest.raises(FitError, match="OOMs outside"):
        fit.compute_for(0.97)  # error 0.03 needs ~10^17 FLOPs: 5 OOMs past 1e12
    with pytest.raises(FitError, match="extrapolation past 2 OOMs"):
        fit.predict_interval([1e16])
    lenient = fit_error_power_law(SHORT, data, n_boot=50, max_extrapolation_ooms=6)
    assert lenient.compute_for(0.97)[0] > 1e15


def test_refuses_unbounded_interval():
    params = {"floor": 0.1, "ceiling": 0.8, "slope_per_oom": 2.0, "midpoint_log10": 11.5}
    data = per_problem(truth_curve("logistic", LADDER, params), 150, np.random.default_rng(5))
    fit = fit_logistic(LADDER, data, n_boot=100, max_extrapolation_ooms=10)
    with pytest.raises(FitError, match="unbounded"):
        fit.compute_for(fit.params["ceiling"] - 1e-4)


def test_refuses_too_few_rungs():
    x = np.logspace(9, 12, 4)
    data = per_problem(np.array([0.1, 0.3, 0.6, 0.7]), 50, np.random.default_rng(0))
    with pytest.raises(FitError, match="too few rungs.*4 parameters need at least 5.*floor"):
        fit_logistic(x, data, n_boot=10)
    assert fit_logistic(x, data, n_boot=10, floor=0.0).params["ceiling"] > 0.5  # 3 parameters fit
    with pytest.raises(FitError, match="too few rungs"):
        fit_coverage([1, 10], per_problem(np.array([0.2, 0.5]), 50, np.random.default_rng(0)), n_boot=10)


def test_refuses_flat_curve():
    data = np.full((40, 6), 0.5)
    with pytest.raises(FitError, match="flat"):
        fit_logistic(np.logspace(9, 14, 6), data, n_boot=10)


def test_refuses_a_falling_curve():
    falling = 1 - truth_curve("coverage", SAMPLES, {"a": -2.0, "b": -0.4})  # accuracy drops with k
    fit = fit_mean_curve("error-power-law", SAMPLES, falling)
    with pytest.raises(FitError, match="does not rise"):
        fit.compute_for(0.5)


def test_mean_curve_fit_has_no_interval():
    fit = fit_mean_curve("coverage", SAMPLES, truth_curve("coverage", SAMPLES, {"a": -2.0, "b": -0.4}))
    assert fit.params["a"] == pytest.approx(-2.0, rel=1e-6)
    value, lo, hi = fit.compute_for(0.5)
    assert math.isnan(lo) and math.isnan(hi) and value > 1
    with pytest.raises(FitError, match="no bootstrap"):
        fit.predict_interval([10])


@pytest.mark.parametrize(
    "compute,values,match",
    [
        ([1, 2, 2, 4], np.full((3, 4), 0.5), "strictly increasing"),
        ([1, 2, 3, 4], np.full((3, 4), 1.5), r"\[0, 1\]"),
        ([1, 2, 3, 4], np.full((3, 3), 0.5), "shape"),
    ],
)
def test_bad_inputs_are_config_errors(compute, values, match):
    with pytest.raises(ConfigError, match=match):
        fit_coverage(compute, values)


def test_bad_settings_are_config_errors(logistic_fit):
    data = per_problem(np.linspace(0.1, 0.8, 11), 20, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="unknown fit law"):
        fit_curve("sigmoid", LADDER, data)
    with pytest.raises(ConfigError, match="floor applies"):
        fit_coverage(SAMPLES, data, floor=0.0)
    with pytest.raises(ConfigError, match="level"):
        logistic_fit.compute_for(0.5, level=1.5)
    with pytest.raises(ConfigError, match="target"):
        logistic_fit.compute_for(1.0)


# ---------------------------------------------------------------- a published curve
def test_brown_2024_published_coverage_points_reproduce():
    """Brown et al. 2024, "Large Language Monkeys", arXiv 2407.21787.

    Points used (percent coverage at k samples):
    * SWE-bench Lite, DeepSeek-Coder-V2-Instruct: 15.9% at k=1, 56% at k=250 (abstract;
      Fig. 1/2), and the single-sample state of the art it beats, 43% (abstract).
    * MATH, Llama-3-8B-Instruct: 82.9% at k=100, 98.44% at k=10,000 (the paper's
      verification discussion, as collected in /work/shared/reference/FACTS.md).

    Two reported points per model make the two-parameter law c = exp(a k^b) exactly
    determined, so this test checks that the fitter reaches that curve (within 0.5
    percentage points of each reported value), that the law has the shape the paper
    reports (a < 0 and b < 0: coverage rises toward 1, log-linearly, without plateau),
    and that claims from the same abstract hold on the fitted curve.
    """
    swe = fit_mean_curve("coverage", [1, 250], [0.159, 0.56])
    assert swe.predict(1) == pytest.approx(0.159, abs=0.005)
    assert swe.predict(250) == pytest.approx(0.56, abs=0.005)
    assert swe.params["a"] < 0 and swe.params["b"] < 0
    crossing, _, _ = swe.compute_for(0.43)  # beats the 43% single-sample SOTA ...
    assert 1 < crossing < 250  # ... before the 250th sample
    ks = np.geomspace(1, 250, 30)
    assert np.all(np.diff(swe.predict(ks)) > 0)

    math_cov = fit_mean_curve("coverage", [100, 10_000], [0.829, 0.9844])
    assert math_cov.predict(100) == pytest.approx(0.829, abs=0.005)
    assert math_cov.predict(10_000) == pytest.approx(0.9844, abs=0.005)
    assert math_cov.params["a"] < 0 and math_cov.params["b"] < 0
    assert 0.829 < math_cov.predict(1_000) < 0.9844
    # "coverage grows to over 95% with 10,000 samples" (abstract): 95% is reached inside the range.
    assert 100 < math_cov.compute_for(0.95)[0] < 10_000


def test_plot_fit_writes_png(tmp_path, logistic_fit):
    out = plot_fit(logistic_fit, str(tmp_path / "fit.png"))
    with open(out, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- extrapolation honesty (issue 10, item 3)
PLATEAU = {"floor": 0.05, "ceiling": 0.6, "slope_per_oom": 1.5, "midpoint_log10": 11.0}


def test_holdout_check_fails_when_the_law_is_wrong():
    """An error power law on a curve that levels off at 60%: R² is high on the rungs, but the law
    refitted without the last rung over-predicts it, so its extrapolations are marked unreliable."""
    failed = 0
    for seed in range(8):
        data = per_problem(truth_curve("logistic", LADDER, PLATEAU), 200, np.random.default_rng(seed))
        fit = fit_error_power_law(LADDER, data, n_boot=150, seed=seed)
        assert fit.r2 > 0.9
        failed += fit.holdout.passed is False
    assert failed == 8
    d = fit.to_dict()
    assert d["holdout_check"]["status"] == "failed" and d["extrapolation"] == "unreliable"
    assert "assumes the error-power-law curve holds" in d["extrapolation_assumes"]
    hc = fit.holdout
    assert hc.held_out == (LADDER[-1],) and not (hc.band[0][0] <= hc.measured[0] <= hc.band[0][1])
    note = fit.extrapolation_note(LADDER[-1] * 10)
    assert "assumes" in note and "UNRELIABLE" in note
    assert fit.extrapolation_note(LADDER[3]) is None  # inside the rungs: not an extrapolation


def test_holdout_check_passes_when_the_law_is_right():
    passed = 0
    for seed in range(8):
        data = per_problem(truth_curve("logistic", LADDER, PLATEAU), 200, np.random.default_rng(seed))
        fit = fit_logistic(LADDER, data, n_boot=150, seed=seed)
        passed += fit.holdout.passed is True
        lo, hi = fit.holdout.band[0]
        assert lo < fit.holdout.predicted[0] < hi
    assert passed >= 7  # a 95% band: one miss in eight is allowed
    assert "passed" in fit.holdout.summary() and fit.to_dict()["extrapolation"] == "checked"
    assert "held-out rung check passed" in fit.extrapolation_note(LADDER[-1] * 10)


def test_holdout_false_alarms_are_rare_for_every_law():
    """Data drawn from each law itself: the check fails in at most 3 of 20 seeds (nominal 1 in 20)."""
    cases = [("coverage", SAMPLES, {"a": -2.0, "b": -0.4}),
             ("error-power-law", SHORT, {"error_at_ref": 0.4, "alpha": 0.2})]
    for law, x, params in cases:
        fails = 0
        for seed in range(20):
            data = per_problem(truth_curve(law, x, params), 150, np.random.default_rng(seed))
            fails += fit_curve(law, x, data, n_boot=100, seed=seed).holdout.passed is False
        assert fails <= 3, (law, fails)


def test_holdout_check_not_possible_is_said():
    x = np.logspace(9, 12, 4)
    data = per_problem(np.array([0.1, 0.3, 0.6, 0.7]), 50, np.random.default_rng(0))
    fit = fit_logistic(x, data, n_boot=20, floor=0.0)  # 3 parameters need 4 rungs: none to spare
    assert fit.holdout.passed is None and "needs 4" in fit.holdout.refused
    assert fit.to_dict()["extrapolation"] == "unchecked"
    assert "unchecked" in fit.extrapolation_note(1e13)
    assert fit_mean_curve("coverage", SAMPLES, truth_curve("coverage", SAMPLES, {"a": -2.0, "b": -0.4})
                          ).holdout.passed is None

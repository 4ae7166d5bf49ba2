"""Log-linear trend fits: known rates come back out, intervals cover the truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oomlab.errors import FitError
from oomlab.forecast.reference import load_reference
from oomlab.forecast.trends import fit_log_linear


def test_sixty_dollars_to_six_cents_in_three_years_is_ten_times_a_year():
    # acceptance: $60 → $0.06 per million tokens over 3 years ≈ 10×/yr (1 OOM/yr)
    fit = fit_log_linear([2021.0, 2024.0], [60.0, 0.06])
    assert fit.ooms_per_year == pytest.approx(-1.0)
    assert fit.fold_per_year == pytest.approx(10.0)
    assert fit.direction == "decline"
    assert fit.ooms_per_year_low is None  # two points: no interval to give
    shipped = load_reference().price_series("gpt3-a16z")
    fit = fit_log_linear([p.year for p in shipped], [p.usd_per_million_tokens for p in shipped])
    assert 9 <= fit.fold_per_year <= 11


def test_shipped_epoch_prices_reproduce_epochs_forty_times_a_year():
    # Epoch AI (2025): GPT-4-level price on GPQA falls ~40× per year
    series = load_reference().price_series("gpt4-gpqa")
    fit = fit_log_linear([p.year for p in series], [p.usd_per_million_tokens for p in series])
    assert 25 <= fit.fold_per_year <= 60
    assert fit.ooms_per_year_low < math.log10(1 / 40) < fit.ooms_per_year_high


def test_a_known_rate_is_recovered_from_noisy_data():
    rng = np.random.default_rng(7)
    years = np.linspace(2018, 2025, 30)
    true_slope = 0.6  # 4×/yr, Epoch's training-compute trend
    values = 1e22 * 10 ** (true_slope * (years - 2018) + rng.normal(0, 0.2, years.size))
    fit = fit_log_linear(years, values, confidence=0.9)
    assert fit.ooms_per_year == pytest.approx(true_slope, abs=0.08)
    assert fit.ooms_per_year_low < true_slope < fit.ooms_per_year_high
    assert fit.factor_per_year == pytest.approx(10**fit.ooms_per_year)
    assert fit.months_per_halving_or_doubling == pytest.approx(12 * math.log10(2) / fit.ooms_per_year)
    assert fit.r_squared > 0.9


def test_the_interval_covers_the_true_rate_about_as_often_as_it_says():
    rng = np.random.default_rng(11)
    years = np.arange(2015, 2025, dtype=float)
    hits = 0
    trials = 400
    for _ in range(trials):
        values = 10 ** (-0.8 * (years - 2015) + rng.normal(0, 0.3, years.size))
        fit = fit_log_linear(years, values, confidence=0.9)
        hits += fit.ooms_per_year_low <= -0.8 <= fit.ooms_per_year_high
    assert 0.85 <= hits / trials <= 0.95


@given(
    slope=st.floats(-2, 2),
    start=st.floats(-3, 25),
    n=st.integers(3, 15),
)
def test_exact_log_linear_data_is_fitted_exactly(slope: float, start: float, n: int):
    years = [2010 + 0.5 * i for i in range(n)]
    values = [10 ** (start + slope * (y - 2010)) for y in years]
    fit = fit_log_linear(years, values)
    assert fit.ooms_per_year == pytest.approx(slope, abs=1e-9)
    assert fit.predict(2010) == pytest.approx(10**start, rel=1e-8)
    assert fit.ooms_per_year_high - fit.ooms_per_year_low < 1e-6


def test_projection_band_widens_with_time_and_holds_the_fit():
    rng = np.random.default_rng(3)
    years = np.linspace(2020, 2024, 12)
    fit = fit_log_linear(years, 10 ** (-(years - 2020) + rng.normal(0, 0.2, years.size)))
    near, far = fit.projection_band(2025), fit.projection_band(2027)
    assert near.low < near.best < near.high
    assert far.high / far.low > near.high / near.low
    assert fit.projection_band(fit.end_year).best == pytest.approx(fit.predict(fit.end_year))


@pytest.mark.parametrize(
    ("years", "values", "fragment"),
    [
        ([2020], [1.0], "at least two"),
        ([2020, 2020], [1.0, 2.0], "share one date"),
        ([2020, 2021], [1.0, -2.0], "positive"),
        ([2020, 2021], [1.0], "same length"),
    ],
)
def test_unsupported_fits_say_why(years, values, fragment):
    with pytest.raises(FitError, match=fragment):
        fit_log_linear(years, values)

"""Counting the OOMs with the essay's own inputs (Aschenbrenner 2024, ch. I)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oomlab.errors import ConfigError
from oomlab.forecast.counting import (
    ZERO,
    Band,
    count_ooms,
    effective_ooms,
    multiplier_ooms,
    ooms_between,
    project,
    rate_band,
    year_reaching,
)
from oomlab.forecast.reference import load_reference


def test_gpt2_to_gpt4_is_about_four_ooms_of_training_compute():
    # acceptance: GPT-2 (~4e21) → GPT-4 (~2e25) ≈ 3.5–4 OOMs
    assert 3.5 <= ooms_between(4e21, 2e25) <= 4.0
    ref = load_reference()
    gpt2, gpt4 = ref.training_run("GPT-2"), ref.training_run("GPT-4")
    band = count_ooms(Band.point(gpt2.flop), Band(gpt4.flop_low, gpt4.flop, gpt4.flop_high))
    assert 3.5 <= band.best <= 4.0
    assert band.low < band.best < band.high  # the essay's 8e24–4e25 range carries through


def test_half_an_oom_a_year_of_each_driver_for_four_years_is_four_ooms():
    # acceptance: 0.5 OOM/yr compute + 0.5 OOM/yr algorithms over 4 years ≈ 4 OOMs
    points = project(2023, 4, Band.point(0.5), Band.point(0.5))
    assert points[-1].year == 2027
    assert points[-1].effective.best == pytest.approx(4.0)
    assert [p.year for p in points] == [2023, 2024, 2025, 2026, 2027]


def test_the_shipped_ranges_and_an_unhobbling_gain_bracket_the_essays_five_ooms():
    ref = load_reference()
    phys = rate_band(ref.trends_of("physical_compute"), ref.trend("essay-compute"))
    algo = rate_band(ref.trends_of("algorithmic_efficiency"), ref.trend("essay-algorithms"))
    cot = multiplier_ooms(ref.multiplier("chain_of_thought"))
    end = project(2023, 4, phys, algo, [cot])[-1].effective
    assert end.best == pytest.approx(5.0)
    assert end.low < 5 < end.high
    assert 3.5 < end.low and end.high < 8


def test_effective_compute_is_a_sum_of_ooms():
    total = effective_ooms(Band.point(2), Band(1, 2, 3), [multiplier_ooms(Band(5, 10, 30))])
    assert total.best == pytest.approx(5)
    assert total.low == pytest.approx(3 + 0.69897, abs=1e-4)
    assert total.high == pytest.approx(5 + 1.47712, abs=1e-4)


def test_rate_band_spans_the_sources_and_keeps_the_chosen_best():
    ref = load_reference()
    algo = rate_band(ref.trends_of("algorithmic_efficiency"), ref.trend("essay-algorithms"))
    assert algo.best == 0.5
    assert algo.low == pytest.approx(0.258) and algo.high == pytest.approx(0.722)
    median = rate_band(ref.trends_of("algorithmic_efficiency"))
    assert median.best == pytest.approx((0.5 + 0.452) / 2)


def test_year_reaching_a_target():
    # 5 OOMs at 1 OOM/yr from 2023 → 2028; the slow end never gets there at rate 0
    when = year_reaching(5, 2023, Band(0.0, 1.0, 2.0))
    assert when.best == pytest.approx(2028)
    assert when.earliest == pytest.approx(2025.5)
    assert when.latest is None
    # a one-time gain counts towards the target
    assert year_reaching(5, 2023, Band.point(1), Band.point(1)).best == pytest.approx(2027)
    assert year_reaching(0.5, 2023, Band.point(1), Band.point(1)).best == 2023


def test_bands_refuse_to_be_inverted():
    with pytest.raises(ConfigError):
        Band(2, 1, 3)
    with pytest.raises(ConfigError):
        ooms_between(0, 1)
    with pytest.raises(ConfigError):
        project(2023, 0, ZERO, ZERO)


@given(
    rate=st.floats(0, 2),
    years=st.floats(0.5, 20),
    gain=st.floats(1, 1000),
)
def test_projection_end_is_rate_times_years_plus_gains(rate: float, years: float, gain: float):
    end = project(2020, years, Band.point(rate), Band.point(rate), [multiplier_ooms(Band.point(gain))])[-1]
    assert end.year == pytest.approx(2020 + years)
    assert end.effective.best == pytest.approx(2 * rate * years + multiplier_ooms(Band.point(gain)).best, abs=1e-9)
    target = end.effective.best
    if rate > 1e-3:  # tiny rates turn rounding in the target into years
        assert year_reaching(target, 2020, Band.point(2 * rate), multiplier_ooms(Band.point(gain))).best == pytest.approx(
            2020 + years, abs=1e-6
        )

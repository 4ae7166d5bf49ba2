"""Every calculation the sources make, typed as numbers on the command line; checked by hand."""

from __future__ import annotations

import math

import pytest

from oomlab.errors import ConfigError
from oomlab.forecast.counting import Change, parse_band


def test_effective_compute_from_typed_flop_and_rates(oomlab):
    # 4e21 → 2e25 is ×5,000 = 3.699 OOMs; 4 years at 0.5 OOM/yr of algorithms is 2 more: ×500,000 in all
    out = oomlab("ooms", "count", "4e21", "2e25", "--years", "4", "--algo-rate", "0.5", "--json").json()
    assert out["physical_ooms"]["best"] == pytest.approx(math.log10(5000))
    assert out["algorithmic_ooms"]["best"] == pytest.approx(2.0)
    assert out["effective_ooms"]["best"] == pytest.approx(math.log10(5000) + 2)
    assert out["effective_factor"] == pytest.approx(500_000)
    text = oomlab("ooms", "count", "4e21", "2e25", "--years", "4", "--algo-rate", "0.5").out
    assert "×5,000" in text and "×100" in text and "×500,000" in text
    assert "as typed (--algo-rate)" in text


def test_the_end_point_from_a_typed_compute_rate(oomlab):
    # 2e25 FLOP, 4 years at 0.5 OOM/yr of compute and of algorithms → 2e27 FLOP, 4 OOMs effective (×10,000)
    out = oomlab("ooms", "count", "2e25", "--years", "4", "--compute-rate", "0.5", "--algo-rate", "0.5",
                 "--json").json()
    assert out["end_flop"]["best"] == pytest.approx(2e27)
    assert out["effective_ooms"]["best"] == pytest.approx(4.0)
    assert out["effective_factor"] == pytest.approx(1e4)


def test_typed_ranges_and_unhobbling_factors(oomlab):
    # algorithms 0.3–0.7 OOM/yr over 4 years; chain of thought typed as ×10 (one OOM)
    out = oomlab("ooms", "count", "1e24", "1e26", "--years", "4", "--algo-rate", "0.3:0.7",
                 "--unhobbling-factor", "10", "--json").json()
    eff = out["effective_ooms"]
    assert (eff["low"], eff["best"], eff["high"]) == pytest.approx((2 + 1.2 + 1, 2 + 2 + 1, 2 + 2.8 + 1))


def test_totals_are_printed_with_their_multipliers(oomlab):
    text = oomlab("ooms", "count", "1", "501.187").out  # 2.7 OOMs
    assert "2.70" in text and "×501" in text


def test_projection_to_a_date_with_typed_rates(oomlab):
    # 2023.0 → 2027-12 (2027 + 11/12) at 0.5 + 0.5 OOM/yr: 4.917 OOMs, ×82,500
    out = oomlab("ooms", "project", "--start-year", "2023", "--base-flop", "2e25", "--compute-rate", "0.5",
                 "--algo-rate", "0.5", "--to", "2027-12", "--json").json()
    last = out["points"][-1]
    years = 4 + 11 / 12
    assert last["year"] == pytest.approx(2023 + years)
    assert last["effective_ooms"]["best"] == pytest.approx(years)
    assert last["effective_flop"]["best"] == pytest.approx(2e25 * 10**years)
    text = oomlab("ooms", "project", "--start-year", "2023", "--base-flop", "2e25", "--compute-rate", "0.5",
                  "--algo-rate", "0.5", "--to", "2027-12").out
    assert "2027.92" in text and "×82,500" in text


def test_projection_from_a_model_to_a_date(oomlab):
    # GPT-4 (2023-03 = 2023.167) to 2027-12: 4.75 years at the essay's 0.5 + 0.5 OOM/yr, plus CoT's 1 OOM
    out = oomlab("ooms", "project", "--to", "2027-12", "--unhobbling", "chain_of_thought", "--json").json()
    assert out["years"] == pytest.approx(4.75)
    assert out["points"][-1]["effective_ooms"]["best"] == pytest.approx(4.75 + 1)


def test_a_two_point_price_rate_is_labelled_a_price(oomlab):
    # a16z: $60 (2021-11) → $0.06 (2024-11): ÷1,000 in 3 years, ÷10 a year, halving every 12·log10(2) months
    out = oomlab("ooms", "rate", "price", "2021-11", "60", "2024-11", "0.06", "--to", "2027-11", "--json").json()
    assert out["ooms"] == pytest.approx(-3)
    assert out["years"] == pytest.approx(3)
    assert out["ooms_per_year"] == pytest.approx(-1)
    assert out["factor_per_year"] == pytest.approx(0.1)
    assert out["months_per_factor_2"] == pytest.approx(12 * math.log10(2))
    assert out["at"]["value"] == pytest.approx(6e-5)
    assert out["unit"] == "$ per million tokens"
    text = oomlab("ooms", "rate", "price", "2021-11", "60", "2024-11", "0.06").out
    assert "$60 per M tokens" in text and "÷1,000" in text and "÷10 per year" in text
    assert "FLOP" not in text


def test_a_two_point_compute_rate(oomlab):
    # GPT-2 (2019-02, 4e21) → GPT-4 (2023-03, 2.1e25): 3.72 OOMs over 4.083 years
    out = oomlab("ooms", "rate", "compute", "2019-02", "4e21", "2023-03", "2.1e25", "--json").json()
    assert out["ooms"] == pytest.approx(math.log10(2.1e25 / 4e21))
    assert out["years"] == pytest.approx(4 + 1 / 12)
    assert out["factor_per_year"] == pytest.approx((2.1e25 / 4e21) ** (1 / (4 + 1 / 12)))
    text = oomlab("ooms", "rate", "compute", "2019-02", "4e21", "2023-03", "2.1e25").out
    assert "4e21 FLOP" in text and "×5,250" in text


def test_count_effective_refuses_a_rate_that_is_not_algorithmic(oomlab):
    oomlab("ooms", "count", "GPT-2", "GPT-4", "--effective", "--algorithms", "a16z-price").assert_one_clear_line(
        "'a16z-price' is a price_decline rate", "algorithmic_efficiency")
    oomlab("ooms", "project", "--algorithms", "epoch-compute").assert_one_clear_line("physical_compute rate")


def test_projected_ranges_say_what_they_are(oomlab):
    text = oomlab("ooms", "project").out
    assert "envelope of essay-algorithms, ho2024-algorithms" in text
    assert "not a probability interval" in text
    out = oomlab("ooms", "project", "--json").json()
    assert "not a probability interval" in out["range"]
    # the envelope really is min(low) .. max(high) of the shipped algorithmic rows
    assert (out["algorithmic_rate"]["low"], out["algorithmic_rate"]["high"]) == pytest.approx((0.258, 0.722))
    assert "envelope" in oomlab("ooms", "count", "GPT-2", "GPT-4", "--effective").out


@pytest.mark.parametrize(
    ("text", "band"), [("0.5", (0.5, 0.5, 0.5)), ("0.3:0.7", (0.3, 0.5, 0.7)), ("0.2:0.4:0.9", (0.2, 0.4, 0.9))],
)
def test_typed_bands(text, band):
    b = parse_band(text, "--algo-rate")
    assert (b.low, b.best, b.high) == pytest.approx(band)


@pytest.mark.parametrize("text", ["fast", "0.7:0.3", "1:2:3:4", "inf", "nan:1"])
def test_typed_bands_that_are_not(text):
    with pytest.raises(ConfigError):
        parse_band(text, "--algo-rate")


def test_change_between_two_dates():
    c = Change(2021.0, 60.0, 2024.0, 0.06)
    assert c.ooms == pytest.approx(-3) and c.ooms_per_year == pytest.approx(-1)
    with pytest.raises(ConfigError):
        Change(2021.0, 60.0, 2021.0, 1.0)

"""Conversions with the essay's and the seed estimates' own inputs."""

from __future__ import annotations

import pytest

from oomlab.errors import ConfigError
from oomlab.forecast import conversions as conv
from oomlab.forecast.pace import MONTH_PER_MILLION, ONE_PER_SECOND, resolve_pace


def test_seed_fleet_is_about_one_watt_per_human_equivalent():
    # acceptance: 16 GPUs × 1,500 W serving 100 streams, each 300× a human's 1 token/s → ~1 W
    est = conv.fleet_estimate(gpus=16, watts_per_gpu=1500, streams=100, speed_vs_human=300, pace=ONE_PER_SECOND)
    assert est.total_watts == 24_000
    assert est.human_equivalents == 30_000
    assert est.watts_per_human_equivalent == pytest.approx(0.8)
    assert 0.5 <= est.watts_per_human_equivalent <= 1.5
    assert est.joules_per_token == pytest.approx(0.8)
    assert conv.fleet_estimate(pace=ONE_PER_SECOND) == est  # the defaults are the seed's inputs
    assert conv.fleet_estimate().watts_per_human_equivalent == pytest.approx(0.8)  # speed is relative: any pace
    assert est.full_time_workers == pytest.approx(30_000 * 168 / 40)  # a fleet runs 168 h a week, a person 40


def test_seed_price_is_two_to_three_watts_per_human_equivalent():
    # acceptance: $4/H100-hour at 1,500 W, $5 per M tokens, 750 human hours per M tokens → ~2–3 W
    est = conv.energy_from_price(usd_per_gpu_hour=4, watts_per_gpu=1500, usd_per_million_tokens=5,
                                 pace=MONTH_PER_MILLION)
    assert est.human_hours_per_million_tokens == pytest.approx(750)
    assert est.gpu_hours_per_million_tokens == pytest.approx(1.25)
    assert est.watt_hours_per_million_tokens == pytest.approx(1875)
    assert est.joules_per_token == pytest.approx(6.75)
    assert 2 <= est.human_equivalent_watts <= 3
    assert est.human_equivalent_watts == pytest.approx(2.5)


def test_the_essays_thinking_time_table():
    # SA ch. I: 100s of tokens ≈ minutes ... millions ≈ months, at 100 tokens/min, 8 h days, 40 h weeks
    rows = {r.order: r.human_time for r in conv.thinking_time_table()}
    assert 1 <= rows["100s"].minutes < 10
    assert 15 <= rows["1,000s"].minutes <= 60  # half an hour
    assert 0.3 <= rows["10,000s"].workdays <= 1  # half a workday
    assert 0.7 <= rows["100,000s"].workweeks <= 2  # a workweek
    assert 1.5 <= rows["millions"].workmonths <= 12  # months
    assert rows["1,000s"].phrase() == "30 minutes"


def test_tokens_and_hours_round_trip():
    assert conv.tokens_to_human_time(1e6).hours == pytest.approx(1e6 / 100 / 60)
    assert conv.human_time_to_tokens(40) == 240_000
    assert conv.tokens_to_human_time(conv.human_time_to_tokens(7.5)).hours == pytest.approx(7.5)
    assert conv.tokens_to_human_time(1e6).phrase().endswith("workweeks")
    assert conv.tokens_to_human_time(3e7).phrase().endswith("working years")


def test_watts_and_joules_per_token():
    assert conv.human_equivalent_watts(0.12, ONE_PER_SECOND) == pytest.approx(0.12)  # ML.ENERGY's Llama 3.1 8B on H100
    assert conv.human_equivalent_watts(0.12) == pytest.approx(0.12 * 100 / 60)  # default: 100 tokens/minute
    assert conv.human_equivalent_watts(0.12, resolve_pace(tokens_per_second=2)) == pytest.approx(0.24)
    assert conv.joules_per_token_at(conv.HUMAN_BRAIN_WATTS, ONE_PER_SECOND) == pytest.approx(20)


def test_serving_cost_and_its_inverse():
    assert conv.usd_per_million_tokens(4, 1000) == pytest.approx(4 / 3.6)
    assert conv.tokens_per_second_for_price(4, conv.usd_per_million_tokens(4, 1234)) == pytest.approx(1234)


def test_a_hundred_thousand_h100s():
    # SA IIIa's arithmetic: $25k per H100, GPUs about half of capex, ~1.4 kW all-in per GPU
    est = conv.cluster_estimate(100_000, unit_usd=25_000, all_in_watts=1400, peak_flops=989e12)
    assert est.gpu_capex_usd == pytest.approx(2.5e9)
    assert est.capex_usd == pytest.approx(5e9)
    assert est.megawatts == pytest.approx(140)
    assert est.peak_flops_total == pytest.approx(9.89e19)


def test_nonsense_inputs_are_refused():
    with pytest.raises(ConfigError):
        conv.fleet_estimate(gpus=0)
    with pytest.raises(ConfigError):
        conv.cluster_estimate(10, 1, 1, gpu_share_of_cost=1.5)
    with pytest.raises(ConfigError):
        conv.tokens_to_human_time(-1)

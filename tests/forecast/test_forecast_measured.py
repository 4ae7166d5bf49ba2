"""A run's ledger totals as J/token, $/M tokens, tokens/s and human-equivalent watts."""

from __future__ import annotations

import pytest

from oomlab.forecast.measured import measured_figures
from oomlab.forecast.pace import ONE_PER_SECOND, resolve_pace
from oomlab.ledger import LedgerTotals


def totals(**changes) -> LedgerTotals:
    base = dict(samples=40, prompt_tokens=2_000, completion_tokens=10_000, flops=1e13, seconds=50.0,
                joules=1_500.0, energy_measured=True, dollars=0.02, human_minutes=100.0, model_id="gemma-3-270m")
    base.update(changes)
    return LedgerTotals(**base)


def test_figures_are_per_completion_token():
    f = measured_figures(totals())  # the default pace: 100 tokens/minute
    assert f.joules_per_token == pytest.approx(0.15)  # 1,500 J / 10,000 completion tokens
    assert f.usd_per_million_tokens == pytest.approx(2.0)
    assert f.tokens_per_second == pytest.approx(200)
    assert f.speed_vs_human == pytest.approx(200 / (100 / 60))
    assert f.human_equivalent_watts == pytest.approx(0.15 * 100 / 60)  # J/token × the pace's tokens/s
    assert f.human_hours == pytest.approx(10_000 / 100 / 60)  # the same pace, not a second one
    assert f.energy_label == "measured"
    assert f.as_dict()["energy"] == "measured"


def test_one_pace_for_watts_speed_and_hours():
    f = measured_figures(totals(), ONE_PER_SECOND)
    assert f.speed_vs_human == pytest.approx(200)
    assert f.human_equivalent_watts == pytest.approx(0.15)  # J/token × 1 token/s
    assert f.human_hours == pytest.approx(10_000 / 3600)  # and 1 token/s for the hours too


def test_a_faster_human_pace_needs_more_watts():
    assert measured_figures(totals(), resolve_pace(tokens_per_second=2)).human_equivalent_watts == pytest.approx(0.3)


def test_estimated_energy_is_labelled():
    assert measured_figures(totals(energy_measured=False)).energy_label == "estimated"


def test_empty_books_give_none_not_a_division_error():
    f = measured_figures(totals(completion_tokens=0, joules=0, seconds=0, dollars=0))
    assert f.joules_per_token is None and f.usd_per_million_tokens is None
    assert f.tokens_per_second is None and f.human_equivalent_watts is None

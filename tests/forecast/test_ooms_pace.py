"""One human pace: the same tokens/s and hours a day behind every human-time figure, and said so."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from oomlab.errors import ConfigError, UnknownNameError
from oomlab.forecast import pace as pace_mod
from oomlab.forecast.pace import (
    DEFAULT_PACE,
    MONTH_PER_MILLION,
    ONE_PER_SECOND,
    resolve_pace,
    tokens_to_human_time,
)
from oomlab.ledger import LedgerTotals


def test_the_sources_conventions_are_named_presets():
    assert DEFAULT_PACE.name == "100-per-minute"
    assert DEFAULT_PACE.tokens_per_minute == pytest.approx(100)  # SA ch. I
    assert (DEFAULT_PACE.hours_per_day, DEFAULT_PACE.days_per_week) == (8, 5)  # 40-hour weeks
    assert (ONE_PER_SECOND.tokens_per_second, ONE_PER_SECOND.hours_per_day) == (1, 8)  # the seed essay
    assert MONTH_PER_MILLION.hours_per_million_tokens == pytest.approx(750)  # the seed's 750 h per M tokens
    assert tokens_to_human_time(1e6, MONTH_PER_MILLION).workmonths == pytest.approx(1.03, abs=0.01)  # "a month"
    for p in pace_mod.PRESETS.values():
        assert p.source.strip()


def test_the_ledger_counts_human_minutes_at_the_default_pace():
    from oomlab import ledger

    assert ledger.HUMAN_TOKENS_PER_MINUTE == pytest.approx(pace_mod.HUMAN_TOKENS_PER_MINUTE)


def test_hours_per_day_turn_hours_into_working_days():
    # 48,000 tokens at 100/min = 8 h: one 8-hour day, two 4-hour days
    assert tokens_to_human_time(48_000).workdays == pytest.approx(1)
    assert tokens_to_human_time(48_000, resolve_pace(hours_per_day=4)).workdays == pytest.approx(2)


def test_a_changed_pace_says_what_it_changed():
    p = resolve_pace("one-per-second", hours_per_day=6)
    assert (p.tokens_per_second, p.hours_per_day, p.name) == (1, 6, "custom")
    assert "one-per-second" in p.source and "6 h/day" in p.source


@pytest.mark.parametrize(
    "kwargs", [{"tokens_per_second": 0}, {"tokens_per_second": float("nan")}, {"hours_per_day": 25},
               {"days_per_week": 8}, {"hours_per_day": float("inf")}],
)
def test_impossible_paces_are_refused(kwargs):
    with pytest.raises(ConfigError):
        resolve_pace(**kwargs)


def test_an_unknown_preset_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="month-per-million"):
        resolve_pace("two-per-second")


# ---------------------------------------------------------------- the CLI states and takes the pace


@pytest.mark.parametrize(
    "args",
    [
        ["convert", "tokens"],
        ["convert", "tokens", "30000"],
        ["convert", "tokens", "--hours", "2"],
        ["convert", "watts", "--j-per-token", "0.12"],
        ["convert", "fleet"],
        ["convert", "price-energy"],
    ],
)
def test_every_output_that_uses_the_pace_states_it(oomlab, args):
    text = oomlab("ooms", *args)
    assert text.code == 0, text.err
    assert "human pace 1.67 tokens/s (100/min), 8 h/day, 5 days/week [100-per-minute" in text.out
    data = oomlab("ooms", *args, "--json").json()
    pace = data["human_pace"] if "human_pace" in data else data["pace"]
    assert pace["name"] == "100-per-minute" and pace["tokens_per_second"] == pytest.approx(100 / 60)


def test_pace_flags_on_the_group_and_on_a_command(oomlab):
    # 1e6 tokens at 1 token/s = 277.8 h; 8-hour days → 34.7 days; 6-hour days → 46.3
    grouped = oomlab("ooms", "--pace", "one-per-second", "convert", "tokens", "1e6", "--json").json()
    assert grouped["hours"] == pytest.approx(1e6 / 3600)
    assert grouped["workdays"] == pytest.approx(1e6 / 3600 / 8)
    mine = oomlab("ooms", "--pace", "one-per-second", "convert", "tokens", "1e6",
                  "--hours-per-day", "6", "--json").json()
    assert mine["workdays"] == pytest.approx(1e6 / 3600 / 6)
    assert mine["pace"]["tokens_per_second"] == 1


def test_price_energy_takes_its_hours_from_the_pace(oomlab):
    # $5/M ÷ $4/h = 1.25 GPU-h × 1,500 W = 1,875 Wh per M tokens = 6.75 J/token
    seed = oomlab("ooms", "convert", "price-energy", "--pace", "month-per-million", "--json").json()
    assert seed["human_hours_per_million_tokens"] == pytest.approx(750)
    assert seed["human_equivalent_watts"] == pytest.approx(1875 / 750)  # the seed's 2.5 W
    at_two = oomlab("ooms", "convert", "price-energy", "--human-tokens-per-second", "2",
                    "--json").json()
    assert at_two["human_equivalent_watts"] == pytest.approx(6.75 * 2)
    assert at_two["human_workdays_per_million_tokens"] == pytest.approx(1e6 / 7200 / 8)


def test_price_energy_help_no_longer_calls_a_month_working_hours(oomlab):
    out = oomlab("ooms", "convert", "price-energy", "--help").out
    assert "--human-hours-per-million" not in out
    assert "--pace" in out and "calendar month" in out


@pytest.fixture
def fake_store(monkeypatch, tmp_path: Path) -> Path:
    """A Store with one run: 800 J over 4,000 completion tokens = 0.2 J/token."""

    class Store:
        def __init__(self, path):
            self.path = Path(path)

        def run_totals(self, run_id: str) -> LedgerTotals:
            return LedgerTotals(samples=8, prompt_tokens=400, completion_tokens=4_000, flops=2e12, seconds=20.0,
                                joules=800.0, energy_measured=False, dollars=0.004, human_minutes=40.0,
                                model_id="gemma-3-270m")

        def close(self) -> None:
            pass

    module = types.ModuleType("oomlab.store")
    module.Store = Store  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "oomlab.store", module)
    db = tmp_path / "oomlab.db"
    db.write_bytes(b"")
    return db


def _watts_beside(text: str, joules_per_token: str) -> str:
    """The 'W at human pace' cell of the table row whose J/token cell is `joules_per_token`."""
    found = re.search(rf"│\s*{re.escape(joules_per_token)}\s*│\s*([0-9.]+)\s*│", text)
    assert found, text
    return found.group(1)


@pytest.mark.parametrize(("pace", "watts"), [("month-per-million", "2.5"), ("100-per-minute", "11.2")])
def test_the_run_table_uses_one_pace_for_every_watt(oomlab, fake_store, pace, watts):
    # Today's table showed 6.75 W (J/token × 1 token/s) beside a footnote of 2.5 W (750 h per M tokens).
    text = oomlab("ooms", "--run", "run-1", "--db", str(fake_store), "--pace", pace)
    assert text.code == 0, text.err
    assert _watts_beside(text.out, "6.75") == watts  # the seed price row: $4/GPU-h at 1,500 W, $5/M tokens
    assert not re.search(r"\d W at", text.out)  # no footnote with a second, different watts figure
    assert f"[{pace}:" in text.out  # the pace is stated
    data = oomlab("ooms", "--run", "run-1", "--db", str(fake_store), "--pace", pace,
                  "--json").json()
    tps = data["human_pace"]["tokens_per_second"]
    for row in data["reference"]:
        if row["joules_per_token"] is not None:
            assert row["human_equivalent_watts"] == pytest.approx(row["joules_per_token"] * tps)
    run = data["run"]
    assert run["human_equivalent_watts"] == pytest.approx(0.2 * tps)
    assert run["human_hours"] == pytest.approx(4_000 / tps / 3600)  # the same pace for the hours


def test_a_bad_pace_is_one_line(oomlab):
    oomlab("ooms", "convert", "tokens", "5", "--hours-per-day", "30").assert_one_clear_line("at most 24")
    oomlab("ooms", "--pace", "fast", "convert", "fleet").assert_one_clear_line("unknown pace 'fast'")

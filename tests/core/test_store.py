"""The Store on a real SQLite file: migrations, the sample cache, runs."""

from __future__ import annotations

import sqlite3

import pytest

from oomlab.backends.base import Generation, ModelFacts, SamplingParams
from oomlab.errors import RunNotFoundError
from oomlab.ledger import Pricing
from oomlab.store import AttemptRow, NewSample, Store, cache_key

FACTS = ModelFacts("m", 10, 5, 1, 4, 4, 16)


def test_migrations_run_once_and_are_recorded(tmp_path) -> None:
    db = tmp_path / "x.db"
    Store(db).close()
    Store(db).close()
    names = [r[0] for r in sqlite3.connect(db).execute("SELECT name FROM _migrations")]
    from importlib import resources

    files = sorted(f.name.removesuffix(".sql") for f in resources.files("oomlab.migrations").iterdir()
                   if f.name.endswith(".sql"))
    assert names == files and files[:2] == ["m001_init", "m002_integrity"]


def test_cache_key_identity() -> None:
    p = SamplingParams(temperature=0.7, max_tokens=8)
    assert cache_key("m", "q", p, 1) == cache_key("m", "q", p, 1)
    assert cache_key("m", "q", p, 1) != cache_key("m", "q", p, 2)
    assert cache_key("m", "q", p, 1) != cache_key("m2", "q", p, 1)
    assert cache_key("m", "q", p, 1) != cache_key("m", "q", SamplingParams(temperature=0.8, max_tokens=8), 1)
    greedy = SamplingParams(temperature=0.0)
    assert cache_key("m", "q", greedy, 1) == cache_key("m", "q", greedy, 7)  # greedy ignores the seed


def test_samples_round_trip_and_unknown_run(tmp_path) -> None:
    s = Store(tmp_path / "x.db")
    p = SamplingParams()
    g = Generation("hello", 3, 2, 0.1, seed=4, token_logprobs=(-0.5, -1.0), group_size=2)
    key = cache_key("m", "q", p, 4)
    added, inserted = s.add_sample(NewSample(key, "m", "q", p, g, 1.5, False, "estimated"), run_id=None)
    sid = added.id
    row = s.cached([key])[key]
    assert inserted and row == added
    assert row.id == sid and row.generation == g and row.joules == 1.5 and not row.energy_measured
    run = s.create_run({"a": 1}, backend="b", model_id="m", facts=FACTS, task="t", energy_method="estimated",
                       pricing=Pricing(usd_per_hour=1.0), version="0")
    assert s.open_run({"a": 1}, backend="b", model_id="m", facts=FACTS, task="t", energy_method="estimated",
                      pricing=Pricing(usd_per_hour=1.0), version="0") == (run, True)
    s.add_attempt(run, AttemptRow("majority", 0, 1, "5", True, [sid], {}))
    assert s.run_totals(run).completion_tokens == 2
    s.finish_run(run)
    fresh = s.open_run({"a": 1}, backend="b", model_id="m", facts=FACTS, task="t", energy_method="estimated",
                       pricing=Pricing(usd_per_hour=1.0), version="0")
    assert fresh[0] != run and fresh[1] is False, "a finished run is never resumed"
    with pytest.raises(RunNotFoundError, match="no run 'nope'"):
        s.run("nope")

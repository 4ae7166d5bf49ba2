"""The Store's guarantees on a real SQLite file, without a model: immutable samples, no dangling
references, leases, resume checks, waste on the books, commit as samples arrive."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from oomlab.backends.base import GenRequest, Generation, ModelFacts, SamplingParams, Waste
from oomlab.energy import EnergyMeter, ServerPower
from oomlab.errors import ConfigError, OomlabError, RunBusyError
from oomlab.ledger import Pricing
from oomlab.store import HOST, AttemptRow, NewSample, RunBusy, Store, cache_key, lease_alive
from oomlab.sweep import MeteredBackend, Sweep, SweepConfig

FACTS = ModelFacts("fake", 1000, 800, 2, 8, 8, 64)


def new_sample(key: str, text: str = "hi", logprobs: tuple[float, ...] | None = None) -> NewSample:
    g = Generation(text, 3, 2, 0.1, seed=1, token_logprobs=logprobs)
    return NewSample(key, "m", "q", SamplingParams(), g, 1.0, False, "estimated")


def make_run(s: Store, config: dict | None = None) -> str:
    return s.create_run(config or {"a": 1}, backend="b", model_id="m", facts=FACTS, task="t", energy_method="estimated",
                        pricing=Pricing(usd_per_hour=1.0), version="0")


def test_a_committed_sample_cannot_be_rewritten_or_deleted(tmp_path) -> None:
    s = Store(tmp_path / "x.db")
    row, inserted = s.add_sample(new_sample("k1"), None)
    assert inserted
    for sql in ("UPDATE samples SET text = 'other' WHERE id = ?", "UPDATE samples SET id = 99 WHERE id = ?",
                "DELETE FROM samples WHERE id = ?"):
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            s.db.execute(sql, (row.id,))
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):  # what the old store did
        s.db.execute("INSERT OR REPLACE INTO samples (cache_key, model_id, prompt, params_json, seed, text,"
                     " prompt_tokens, completion_tokens, group_size, seconds, joules, energy_measured, energy_method,"
                     " finish_reason, created_at) VALUES ('k1','m','q','{}',1,'x',1,1,1,0,0,0,'e','stop','now')")
    again, inserted = s.add_sample(new_sample("k1", text="a different draw"), None)
    assert not inserted and again.id == row.id and again.generation.text == "hi"


def test_logprobs_are_added_once_to_the_same_row(tmp_path) -> None:
    s = Store(tmp_path / "x.db")
    row, _ = s.add_sample(new_sample("k1"), None)
    assert s.add_logprobs(row.id, (-0.5, -1.0))
    assert s.samples([row.id])[row.id].generation.token_logprobs == (-0.5, -1.0)
    assert not s.add_logprobs(row.id, (-9.0, -9.0))
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        s.db.execute("UPDATE samples SET token_logprobs_json = '[0]' WHERE id = ?", (row.id,))


def test_an_attempt_cannot_name_a_sample_that_does_not_exist(tmp_path) -> None:
    s = Store(tmp_path / "x.db")
    run = make_run(s)
    row, _ = s.add_sample(new_sample("k1"), run)
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        s.add_attempt(run, AttemptRow("majority", 0, 1, "5", True, [row.id, 12345], {}))
    assert s.attempts(run) == [], "the failed attempt left nothing behind"
    s.add_attempt(run, AttemptRow("majority", 0, 1, "5", True, [row.id], {}))
    assert s.dangling() == 0


def test_not_a_database_is_one_clear_error(tmp_path) -> None:
    (tmp_path / "text.db").write_text("hello, I am not SQLite\n" * 10)
    with pytest.raises(OomlabError, match="not an SQLite database"):
        Store(tmp_path / "text.db")
    with pytest.raises(OomlabError, match="is a directory"):
        Store(tmp_path)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(OomlabError, match="another program"):
        Store(other)


def test_leases_one_writer_per_run(tmp_path) -> None:
    db = tmp_path / "x.db"
    a, b = Store(db), Store(db)
    cfg = {"a": 1}
    kw = dict(backend="b", model_id="m", facts=FACTS, task="t", energy_method="e", pricing=Pricing(), version="0")
    run_id, resumed = a.open_run(cfg, **kw)
    assert not resumed
    busy = b.open_run(cfg, **kw)  # the same process, another Store: still one writer
    assert isinstance(busy, RunBusy) and busy.run_id == run_id and busy.pid == os.getpid()
    assert a.run(run_id).status == "running"
    a.release(run_id)
    assert a.run(run_id).status == "interrupted"
    assert b.open_run(cfg, **kw) == (run_id, True)


def test_a_dead_writers_run_is_taken_over(tmp_path) -> None:
    db = tmp_path / "x.db"
    s = Store(db)
    run_id = make_run(s)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    s.db.execute("UPDATE runs SET owner_pid = ?, owner_host = ?, heartbeat_at = ? WHERE id = ?",
                 (dead.pid, HOST, time.time(), run_id))
    assert not lease_alive(dead.pid, HOST, time.time())
    assert s.run(run_id).status == "interrupted"
    assert s.claim(run_id) is None
    assert s.run(run_id).owner_pid == os.getpid()
    # a live process elsewhere with a stale heartbeat is dead too
    assert not lease_alive(1, "other-host", time.time() - 3600)
    assert lease_alive(1, "other-host", time.time())


class FakeBackend:
    """Deterministic text per seed; can stream per sample and fail after some samples."""

    name = "fake"
    model_id = "fake"
    facts = FACTS

    def __init__(self, fail_after: int | None = None, remote: bool = False):
        self.fail_after = fail_after
        self.calls: list[tuple[int, ...]] = []
        self.seen_committed: list[int] = []
        self.remote = remote
        self.server_watts = None
        self.store: Store | None = None
        self._waste: list[Waste] = []

    def generate(self, request: GenRequest, on_sample=None) -> list[Generation]:
        self.calls.append(request.seeds)
        out = []
        for i, seed in enumerate(request.seeds):
            if self.fail_after is not None and i >= self.fail_after:
                self._waste.append(Waste(3, 0, 0.5, "HTTP 500", "http://x"))
                raise OomlabError("sibling request failed")
            g = Generation(f"answer {seed % 7}", 3, 2, 0.01, seed=seed,
                           token_logprobs=(-0.1, -0.2) if request.logprobs else None)
            out.append(g)
            if on_sample is not None:
                on_sample(i, g)
                if self.store is not None:
                    self.seen_committed.append(self.store.sample_count())
        return out

    def take_waste(self) -> list[Waste]:
        w, self._waste = self._waste, []
        return w

    def close(self) -> None:
        pass


def test_samples_are_committed_as_they_arrive_and_survive_a_failed_sibling(tmp_path) -> None:
    s = Store(tmp_path / "x.db")
    run = make_run(s)
    fake = FakeBackend(fail_after=3)
    fake.store = s
    metered = MeteredBackend(fake, s, EnergyMeter(), run)
    with pytest.raises(OomlabError, match="sibling"):
        metered.generate(GenRequest("q", SamplingParams(), tuple(range(8))))
    assert fake.seen_committed == [1, 2, 3], "each sample was in the database before the next one was drawn"
    assert s.sample_count() == 3
    w = s.waste(run)
    assert w.requests == 1 and w.prompt_tokens == 3 and w.reasons == {"HTTP 500": 1}
    fake.fail_after = None
    metered.generate(GenRequest("q", SamplingParams(), tuple(range(8))))
    assert fake.calls[-1] == tuple(range(3, 8)), "only the samples not yet committed are drawn again"


def test_logprob_upgrade_keeps_the_old_row(tmp_path) -> None:
    s = Store(tmp_path / "x.db")
    run = make_run(s)
    metered = MeteredBackend(FakeBackend(), s, EnergyMeter(), run)
    req = GenRequest("q", SamplingParams(), (1, 2, 3))
    first = metered.generate(req)
    ids = {r.id for r in s.cached([cache_key("fake", "q", req.params, x) for x in (1, 2, 3)]).values()}
    with_lp = metered.generate(GenRequest("q", SamplingParams(), (1, 2, 3), logprobs=True))
    assert [g.text for g in with_lp] == [g.text for g in first]
    assert all(g.token_logprobs == (-0.1, -0.2) for g in with_lp)
    after = s.cached([cache_key("fake", "q", req.params, x) for x in (1, 2, 3)])
    assert {r.id for r in after.values()} == ids, "same ids: the logprobs were added to the rows"
    assert s.waste(run).reasons == {"re-drawn to add logprobs": 3}


def test_remote_energy_is_unknown_unless_the_server_watts_are_given(tmp_path) -> None:
    s = Store(tmp_path / "x.db")
    run = make_run(s)
    metered = MeteredBackend(FakeBackend(remote=True), s, ServerPower(None), run)
    metered.generate(GenRequest("q", SamplingParams(), (1,)))
    [row] = s.cached([cache_key("fake", "q", SamplingParams(), 1)]).values()
    assert row.energy_method.startswith("unknown") and row.joules != row.joules  # NaN
    assert ServerPower(700).joules(2.0) == 1400.0
    assert "estimated" in ServerPower(700).method


def sweep_cfg(**kw) -> SweepConfig:
    return SweepConfig(**({"task": "arithmetic", "strategies": ["majority"], "n": 4, "problems": 3, "seed": 1} | kw))


def test_resume_refuses_another_configuration_and_a_finished_run(tmp_path) -> None:
    s = Store(tmp_path / "x.db")
    done = Sweep(sweep_cfg(), s, backend=FakeBackend()).run()
    with pytest.raises(ConfigError, match=f"run {done.run_id} is finished"):
        Sweep(sweep_cfg(), s, backend=FakeBackend()).run(resume=done.run_id)
    s.db.execute("UPDATE runs SET status = 'running' WHERE id = ?", (done.run_id,))
    with pytest.raises(ConfigError, match="different configuration") as e:
        Sweep(sweep_cfg(n=8, seed=2), s, backend=FakeBackend()).run(resume=done.run_id)
    assert "n: run 4, this sweep 8" in str(e.value) and "seed: run 1, this sweep 2" in str(e.value)
    assert "\n" not in str(e.value) and "task" not in str(e.value)


def test_a_busy_run_says_who_writes_it(tmp_path) -> None:
    s = Store(tmp_path / "x.db")
    sweep = Sweep(sweep_cfg(), s, backend=FakeBackend())
    claim = s.open_run(sweep.config_record(), backend="fake", model_id="fake", facts=FACTS, task="arithmetic",
                       energy_method="e", pricing=Pricing(), version="0")
    run_id, _ = claim
    with pytest.raises(RunBusyError, match=f"run {run_id} is being written by pid {os.getpid()}"):
        Sweep(sweep_cfg(), Store(tmp_path / "x.db"), backend=FakeBackend()).run(wait=False)


def test_counters_are_right_after_any_number_of_resumes(tmp_path) -> None:
    s = Store(tmp_path / "x.db")
    fake = FakeBackend(fail_after=2)
    for _ in range(3):  # each try commits two samples of the draw, then fails
        with pytest.raises(OomlabError):
            Sweep(sweep_cfg(), s, backend=fake).run()
    fake.fail_after = None
    result = Sweep(sweep_cfg(), s, backend=fake).run()
    info = s.run(result.run_id)
    assert result.resumed and info.status == "done"
    assert info.samples_drawn == 3 * 4 == s.sample_count() and info.samples_reused == 0
    again = Sweep(sweep_cfg(), s, backend=fake).run()
    assert s.run(again.run_id).samples_drawn == 0 and s.run(again.run_id).samples_reused == 12

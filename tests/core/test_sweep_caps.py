"""Caps on a whole sweep: the same runner-level caps `oomlab serve` uses, on a run's books."""

from __future__ import annotations

from oomlab.caps import Caps
from oomlab.store import Store, load_run
from oomlab.sweep import Sweep, SweepConfig
from oomlab.testing import ScriptedBackend


def config() -> SweepConfig:
    return SweepConfig(task="arithmetic", strategies=["greedy", "majority"], n=4, problems=6, backend="scripted",
                       usd_per_hour=2.0)


def tokens_used(store: Store, run_id: str) -> float:
    run = load_run(store, run_id)
    return sum(e.prompt_tokens + e.completion_tokens for e in run.ledger())


def test_a_token_cap_stops_the_sweep_and_a_higher_one_resumes_it(tmp_path):
    store = Store(tmp_path / "caps.db")
    try:
        full = Sweep(config(), Store(tmp_path / "full.db"), backend=ScriptedBackend()).run()
        assert full.stopped_by is None
        full_tokens = tokens_used(Store(tmp_path / "full.db"), full.run_id)

        cap = full_tokens / 3
        capped = Sweep(config(), store, backend=ScriptedBackend(), caps=Caps(tokens=cap)).run()
        assert capped.stopped_by is not None and "tokens cap" in capped.stopped_by and "--resume" in capped.stopped_by
        assert not store.run(capped.run_id).finished  # resumable, not finished
        used = tokens_used(store, capped.run_id)
        assert 0 < used <= cap  # a token cap is an exact worst-case bound: never exceeded

        done = Sweep(config(), store, backend=ScriptedBackend(), caps=Caps(tokens=full_tokens * 10)).run(
            resume=capped.run_id)
        assert done.stopped_by is None and done.run_id == capped.run_id and store.run(done.run_id).finished
        a, b = load_run(store, done.run_id), load_run(Store(tmp_path / "full.db"), full.run_id)
        assert [(x.strategy, x.problem_idx, x.budget, x.answer) for x in a.attempts] == \
               [(x.strategy, x.problem_idx, x.budget, x.answer) for x in b.attempts]
        assert tokens_used(store, done.run_id) == full_tokens  # nothing drawn twice
    finally:
        store.close()


def test_a_dollar_cap_counts_what_a_resumed_run_already_spent(tmp_path):
    def priced() -> SweepConfig:
        c = config()
        c.usd_per_m_prompt = c.usd_per_m_completion = 1000.0  # dollars per token: an exact bound
        return c

    store = Store(tmp_path / "usd.db")
    try:
        full = Sweep(priced(), Store(tmp_path / "full.db"), backend=ScriptedBackend()).run()
        full_usd = sum(e.dollars for e in load_run(Store(tmp_path / "full.db"), full.run_id).ledger())
        first = Sweep(priced(), store, backend=ScriptedBackend(), caps=Caps(usd=full_usd / 2)).run()
        assert first.stopped_by is not None and "usd cap" in first.stopped_by
        spent = sum(e.dollars for e in load_run(store, first.run_id).ledger())
        assert 0 < spent <= full_usd / 2
        again = Sweep(priced(), store, backend=ScriptedBackend(), caps=Caps(usd=spent)).run(resume=first.run_id)
        assert again.stopped_by is not None and again.drawn == 0  # already at the cap: nothing more is drawn
    finally:
        store.close()

"""Problems in flight: against a server where every request takes 200 ms and nothing else limits
concurrency (oomlab.testing.LatencyServer, standing in for vLLM's continuous batching), a sweep keeps
the backend's whole concurrency busy, and what it stores equals a one-problem-at-a-time sweep's."""

from __future__ import annotations

import pytest

from oomlab.store import Store
from oomlab.sweep import Sweep, SweepConfig
from oomlab.testing import LatencyServer


@pytest.fixture
def server():
    with LatencyServer(latency=0.2) as s:
        yield s


def config(url: str, concurrency: int, **kw) -> SweepConfig:
    return SweepConfig(**({"task": "arithmetic", "strategies": ["majority", "best-of-n"], "n": 16, "problems": 40,
                           "seed": 2, "backend": "openai",
                           "backend_options": {"base_url": url, "concurrency": concurrency, "max_retries": 0}} | kw))


def stored(store: Store, run_id: str) -> dict[tuple[str, int], tuple[str, int, int]]:
    rows = store.db.execute("SELECT prompt, seed, text, prompt_tokens, completion_tokens FROM samples").fetchall()
    return {(p, s): (t, pt, ct) for p, s, t, pt, ct in rows}


def test_a_sweep_keeps_the_backends_concurrency_in_flight(server, tmp_path) -> None:
    C = 64
    store = Store(tmp_path / "wide.db")
    result = Sweep(config(server.base_url, C), store).run()
    assert server.peak_in_flight >= 0.95 * C, f"peak {server.peak_in_flight} of {C}"
    assert server.requests == 40 * 16 == store.sample_count()
    assert store.run(result.run_id).samples_drawn == 640

    with LatencyServer(latency=0.0) as quick:  # the same answers, one request at a time
        narrow = Store(tmp_path / "narrow.db")
        one = Sweep(config(quick.base_url, 1), narrow).run()
        assert quick.peak_in_flight == 1
    assert stored(store, result.run_id) == stored(narrow, one.run_id)
    wide_attempts = [(a.strategy, a.problem_idx, a.budget, a.answer) for a in store.attempts(result.run_id)]
    assert wide_attempts == [(a.strategy, a.problem_idx, a.budget, a.answer) for a in narrow.attempts(one.run_id)]
    assert store.dangling() == 0


def test_search_strategies_keep_problems_in_flight_too(server, tmp_path) -> None:
    store = Store(tmp_path / "search.db")
    Sweep(config(server.base_url, 16, strategies=["revise"], n=2, problems=24, task="arithmetic"), store).run()
    assert server.peak_in_flight >= 0.95 * 16, f"peak {server.peak_in_flight} of 16"


def test_energy_under_overlap_adds_up_to_the_servers_busy_time(server, tmp_path) -> None:
    # 640 requests of 200 ms, 64 at a time: the server is busy about 2 s, not 128 s. Each sample is charged
    # server_watts × its share of that busy time, so the sweep's joules are watts × busy time (estimated).
    watts = 500.0
    cfg = config(server.base_url, 64, backend_options={"base_url": server.base_url, "concurrency": 64,
                                                      "max_retries": 0, "server_watts": watts})
    store = Store(tmp_path / "energy.db")
    result = Sweep(cfg, store).run()
    rows = store.db.execute("SELECT joules, seconds, energy_measured, energy_method FROM samples").fetchall()
    joules = sum(r[0] for r in rows)
    assert all(r[0] == pytest.approx(watts * r[1]) and not r[2] and "estimated" in r[3] for r in rows)
    assert 128 * watts > 10 * joules  # not 640 × 0.2 s of one request each
    assert joules == pytest.approx(watts * server.busy_seconds, rel=0.1)
    assert store.run(result.run_id).energy_method == rows[0][3]

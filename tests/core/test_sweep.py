"""A sweep end to end on the embedded model: samples, ledger, SQLite, cache reuse, and a SIGKILL resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

import numpy as np
import pytest

from oomlab.analysis.curves import run_curves
from oomlab.store import Store
from oomlab.sweep import Sweep, SweepConfig

pytestmark = pytest.mark.slow

STRATEGIES = ["greedy", "majority", "best-of-n", "best-of-n:scorer=logprob"]


def test_sweep_writes_run_samples_and_ledger(tmp_path, embedded_backend) -> None:
    store = Store(tmp_path / "s.db")
    cfg = SweepConfig(problems=3, n=4, strategies=STRATEGIES)
    result = Sweep(cfg, store, backend=embedded_backend).run()
    # one draw of N=4 shared by the three sampled strategies (with logprobs), one greedy sample
    assert result.drawn == 3 * (4 + 1) == store.sample_count()
    info = store.run(result.run_id)
    assert info.status == "done" and info.samples_drawn == 15
    curves = run_curves(store, result.run_id, n_boot=200)
    assert [c.key for c in curves] == ["greedy", "majority", "best-of-n", "best-of-n:scorer=logprob"]
    oracle = {c.key: c.oracle for c in curves}
    assert oracle["best-of-n"] and not oracle["best-of-n:scorer=logprob"] and not oracle["majority"]
    maj = curves[1]
    assert [r.k for r in maj.rungs] == [1, 2, 4]
    # cost grows with k: the prompt once, plus k completions
    flops = [r.flops for r in maj.rungs]
    assert flops[0] < flops[1] < flops[2]
    assert all(r.lo <= r.accuracy <= r.hi for c in curves for r in c.rungs)
    # pass@k (oracle best-of-k) is never below majority@k on the same draw
    assert all(b.accuracy >= m.accuracy - 1e-12 for b, m in zip(curves[2].rungs, maj.rungs))
    totals = store.run_totals(result.run_id)
    assert totals.samples == 15 and totals.flops > 0 and totals.joules > 0 and not totals.energy_measured

    again = Sweep(cfg, store, backend=embedded_backend).run()
    assert again.drawn == 0 and again.reused == 15, "a repeated sweep pays for nothing"
    assert again.run_id != result.run_id
    np.testing.assert_array_equal(run_curves(store, again.run_id, n_boot=200)[1].per_problem, maj.per_problem)


def _sweep_cmd(oomlab: list[str], db) -> list[str]:
    return oomlab + ["sweep", "--problems", "8", "--n", "6", "-s", "majority", "-s", "best-of-n",
                        "--db", str(db), "--json"]


def test_sigkill_mid_sweep_resumes_without_redrawing(tmp_path, oomlab_cmd) -> None:
    db = tmp_path / "killed.db"
    proc = subprocess.Popen(_sweep_cmd(oomlab_cmd, db), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 300
    before: dict[str, tuple] = {}
    while time.time() < deadline:
        time.sleep(0.5)
        if db.exists():
            try:
                rows = sqlite3.connect(db).execute("SELECT cache_key, id, text, created_at FROM samples").fetchall()
            except sqlite3.OperationalError:
                continue
            if len(rows) >= 12:  # at least two problems' draws committed
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
        assert proc.poll() is None, f"sweep ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    else:
        pytest.fail("sweep never committed samples")
    before = {k: (i, t, c) for k, i, t, c in sqlite3.connect(db).execute("SELECT cache_key, id, text, created_at FROM samples")}
    assert 12 <= len(before) < 48
    [killed] = Store(db).runs()
    assert killed.status == "interrupted" and killed.samples_drawn == len(before)
    listed = subprocess.run(oomlab_cmd + ["runs", "--db", str(db)], capture_output=True, text=True, timeout=120)
    assert killed.id in listed.stdout and "interrupted" in listed.stdout
    shown = subprocess.run(oomlab_cmd + ["show", killed.id, "--db", str(db)], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert f"run {killed.id} is incomplete (interrupted): it covers" in shown.stdout and "of 8 problems" in shown.stdout

    out = subprocess.run(_sweep_cmd(oomlab_cmd, db), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    resumed = json.loads(out.stdout)
    assert resumed["resumed"] is True
    after = {k: (i, t, c) for k, i, t, c in sqlite3.connect(db).execute("SELECT cache_key, id, text, created_at FROM samples")}
    assert len(after) == 48
    assert all(after[k] == v for k, v in before.items()), "a finished sample was drawn again"
    assert resumed["samples_drawn"] == 48 - len(before)
    assert resumed["run_samples_drawn"] == 48 and resumed["run_samples_reused"] == 0, "counted over both processes"

    clean = subprocess.run(_sweep_cmd(oomlab_cmd, tmp_path / "clean.db"), capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr
    uninterrupted = json.loads(clean.stdout)
    for a, b in zip(resumed["curves"], uninterrupted["curves"]):
        assert a["strategy"] == b["strategy"]
        for ra, rb in zip(a["rungs"], b["rungs"]):
            assert ra["accuracy"] == rb["accuracy"] and ra["lo"] == rb["lo"] and ra["hi"] == rb["hi"]
            assert ra["flops"] == pytest.approx(rb["flops"]) and ra["tokens"] == pytest.approx(rb["tokens"])


def test_a_huge_draw_commits_from_its_first_sample(tmp_path, oomlab_cmd) -> None:
    """--n 100000: samples reach the database as they finish, not when the whole draw is done."""
    db = tmp_path / "huge.db"
    cmd = oomlab_cmd + ["sweep", "--problems", "1", "--n", "100000", "-s", "majority", "--db", str(db), "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    count = 0
    try:
        while time.time() < deadline and count == 0:
            time.sleep(0.2)
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            if db.exists():
                try:
                    count = sqlite3.connect(db).execute("SELECT COUNT(*) FROM samples").fetchone()[0]
                except sqlite3.OperationalError:
                    pass
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert count >= 1, "no sample committed"
    committed = sqlite3.connect(db).execute("SELECT COUNT(*) FROM samples").fetchone()[0]
    assert committed < 100000
    assert Store(db).runs()[0].status == "interrupted"


class Interrupted(Exception):
    pass


def test_an_interrupted_batch_resumes_as_the_uninterrupted_draw(tmp_path, embedded_backend) -> None:
    """llama.cpp's samples depend on their batch-mates, so a batch killed half-way is re-drawn whole."""
    from oomlab.backends.base import GenRequest, SamplingParams
    from oomlab.energy import EnergyMeter
    from oomlab.ledger import Pricing
    from oomlab.sweep import MeteredBackend

    req = GenRequest("12 + 7 = 19\n30 - 4 = 26\n8 * 6 = ", SamplingParams(temperature=1.0, max_tokens=12), tuple(range(8)))
    clean = [g.text for g in embedded_backend.generate(req)]

    class KilledAfterThree:
        model_id, facts, name = embedded_backend.model_id, embedded_backend.facts, "killed"

        def batch_start(self, request, index):
            return embedded_backend.batch_start(request, index)

        def generate(self, request, on_sample=None):
            seen = []

            def deliver(i, g):
                if len(seen) == 3:
                    raise Interrupted
                seen.append(i)
                on_sample(i, g)

            return embedded_backend.generate(request, on_sample=deliver)

    store = Store(tmp_path / "x.db")
    run = store.create_run({"x": 1}, backend="llamacpp", model_id=embedded_backend.model_id,
                           facts=embedded_backend.facts, task="t", energy_method="e", pricing=Pricing(), version="0")
    with pytest.raises(Interrupted):
        MeteredBackend(KilledAfterThree(), store, EnergyMeter(), run).generate(req)
    assert store.sample_count() == 3
    resumed = MeteredBackend(embedded_backend, store, EnergyMeter(), run).generate(req)
    assert [g.text for g in resumed] == clean, "the resumed batch equals the uninterrupted one"
    assert store.sample_count() == 8
    assert store.waste(run).reasons == {"re-drawn with its interrupted batch": 3}
    # a ladder that grows (4 samples, then 8) is not an interrupted batch: only the new seeds are drawn
    grown = Store(tmp_path / "grown.db")
    metered = MeteredBackend(embedded_backend, grown, EnergyMeter(), None)
    metered.generate(GenRequest(req.prompt, req.params, tuple(range(4))))
    metered.generate(req)
    assert grown.sample_count() == 8 and grown.db.execute("SELECT COUNT(*) FROM waste").fetchone()[0] == 0

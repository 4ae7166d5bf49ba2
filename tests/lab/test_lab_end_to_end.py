"""The small preset end to end on CPU: ladder → training → sweeps (ordinary Sweep and Store) → answers → report."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from oomlab.cli import app  # noqa: E402
from oomlab.lab.presets import PRESETS  # noqa: E402
from oomlab.lab.problems import held_out  # noqa: E402
from oomlab.lab.report import write_report  # noqa: E402
from oomlab.lab.run import run_lab  # noqa: E402
from oomlab.lab.summary import lab_dir_for  # noqa: E402
from oomlab.store import Store  # noqa: E402


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    db = tmp_path_factory.mktemp("lab") / "lab.db"
    drawn: dict[str, set[str]] = {}
    result = run_lab(PRESETS["tiny"], db, threads=1, n_boot=200,
                     observe=lambda name, step, rows: drawn.setdefault(name, set()).update(r.example.key for r in rows))
    return db, result, drawn


def test_every_model_is_trained_swept_and_stored(lab):
    db, result, _ = lab
    ladder = PRESETS["tiny"]
    assert len(result.points) == len(ladder.budgets) * len(ladder.formats) == 6
    store = Store(db)
    try:
        runs = {r.id: r for r in store.runs()}
        for e, p in zip(result.entries, result.points):
            info = runs[e["run_id"]]
            assert info.finished and info.backend == "torch" and info.model_id == e["model_id"]
            assert info.facts.n_params_non_embedding == e["n_params"]
            assert (lab_dir_for(db) / "checkpoints" / f"{e['sha256']}.pt").is_file()
            assert 0 < e["train_flops"] <= e["budget"] and e["losses"][-1][2] == pytest.approx(e["train_flops"])
            for c in p.curves.values():
                assert c.per_problem.shape[0] == ladder.problems
                assert all(0 <= a <= 1 for a in c.accuracy) and all(f > 0 for f in c.test_flops)
    finally:
        store.close()


def test_held_out_problems_never_occur_in_the_stream_the_ladder_drew(lab):
    db, result, drawn = lab
    assert set(drawn) == {e["name"] for e in result.entries}
    store = Store(db)
    try:
        for e in result.entries:
            evaluation = {row.inputs["key"] for row in store.problems(e["run_id"])}
            assert len(evaluation) == PRESETS["tiny"].problems
            assert evaluation.isdisjoint(drawn[e["name"]])
            assert all(held_out(PRESETS["tiny"].task, k) for k in evaluation)
            assert not any(held_out(PRESETS["tiny"].task, k) for k in drawn[e["name"]])
    finally:
        store.close()


def test_exchange_rate_gains_and_lifts_are_computed(lab):
    _, result, _ = lab
    for fmt in ("direct", "cot"):
        er = result.exchange[fmt]
        if isinstance(er, str):
            assert er.startswith("refused:")
        else:
            assert math.isfinite(er.slope) and er.n_points >= 2
    assert "cot training vs direct training (greedy)" in result.gains
    assert any(k.endswith(f"@{PRESETS['tiny'].n}") for k in result.gains)
    for gains in result.gains.values():
        for g in gains:
            assert g.status in ("within", "below", "beyond", "chance") and g.test_cost > 0
            assert g.factor > 0 if g.status != "chance" else g.accuracy <= 1 / 7 + 0.1
            if g.status == "within":
                assert g.lo <= g.factor <= g.hi
    assert {lf.oracle for lf in result.lifts} == {True, False}


def test_report_and_cli(lab, tmp_path):
    db, result, _ = lab
    paths = write_report(result, tmp_path)
    html = paths["report"].read_text()
    assert 'id="lab-summary"' in html and "data:image/png;base64," in html and "Compute-equivalent gains" in html
    assert paths["figure"].stat().st_size > 10_000
    summary = json.loads(paths["summary"].read_text())
    assert summary["label"].startswith("measured on the lab task") and len(summary["models"]) == 6
    # the same command again: every model and sweep is reused, and it ends with the table, figure and report
    out = CliRunner().invoke(app, ["lab", "run", "--preset", "tiny", "--db", str(db), "--threads", "1",
                                   "--n-boot", "50"])
    assert out.exit_code == 0, out.output
    assert "held-out accuracy" in out.output and "figure:" in out.output and "report:" in out.output
    plan = CliRunner().invoke(app, ["lab", "plan", "--preset", "tiny"], env={"COLUMNS": "200"})
    assert plan.exit_code == 0 and "train FLOPs" in plan.output and "16×1" in plan.output
    bad = CliRunner().invoke(app, ["lab", "run", "--preset", "huge", "--db", str(db)])
    assert bad.exit_code != 0


def test_two_jobs_train_and_sweep_the_same_ladder_as_one(lab, tmp_path):
    # the one-job lab above ran on one thread per model, as each of these two processes does
    db, sequential, _ = lab
    seen: list[tuple[str, str]] = []

    class Seen:
        def training(self, index, total, name, spec):
            seen.append(("training", name))
            return lambda p: seen.append(("step", name)) if p.step == p.steps else None

        def trained(self, name, model):
            seen.append(("trained", name))

        def sweeping(self, index, total, name, units):
            return lambda done, total, key: seen.append(("swept", name)) if done == total else None

        def note(self, text):
            pass

    parallel = run_lab(PRESETS["tiny"], tmp_path / "two.db", threads=1, n_boot=200, jobs=2, progress=Seen())
    assert [e["name"] for e in parallel.entries] == [e["name"] for e in sequential.entries]
    for a, b in zip(sequential.entries, parallel.entries):
        assert a["sha256"] == b["sha256"]  # the same final weights, byte for byte
        assert a["losses"] == b["losses"] and a["train_flops"] == b["train_flops"]
    for p, q in zip(sequential.points, parallel.points):
        for key, c in p.curves.items():
            assert (c.per_problem == q.curves[key].per_problem).all()
    names = {e["name"] for e in parallel.entries}
    for kind in ("training", "step", "trained", "swept"):  # the workers' progress reached the parent
        assert {n for k, n in seen if k == kind} == names
    store = Store(tmp_path / "two.db")
    try:  # both processes wrote into the one database
        assert {r.id for r in store.runs()} == {e["run_id"] for e in parallel.entries}
    finally:
        store.close()

"""Training: a lab killed with SIGKILL resumes from its last checkpoint and reaches the same weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from oomlab.lab.ladder import Ladder, plan  # noqa: E402
from oomlab.lab.train import load_weights, train  # noqa: E402

LADDER = Ladder("resume", (5e8,), task="lab-chain", task_options={"max_ops": 3}, rows=8, lr=3e-3, shapes=((16, 1),))
CHILD = """
import sys, time
from oomlab.lab.ladder import Ladder, plan
from oomlab.lab.train import train
ladder = Ladder("resume", (5e8,), task="lab-chain", task_options={"max_ops": 3}, rows=8, lr=3e-3, shapes=((16, 1),))
spec = plan(ladder, 5e8, "cot", 0)
train(spec, sys.argv[1], threads=1, checkpoint_every_steps=20, progress=lambda p: time.sleep(0.01))
"""


def test_sigkill_then_resume_reaches_the_same_weights(tmp_path):
    spec = plan(LADDER, 5e8, "cot", 0)
    assert spec.steps > 150
    clean = train(spec, tmp_path / "clean", threads=1)
    killed_dir = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(killed_dir)], env=env)
    record = killed_dir / "models" / f"{spec.key}.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:  # kill it once it has checkpointed at least twice
            if record.is_file() and json.loads(record.read_text()).get("step", 0) >= 40:
                break
            assert child.poll() is None, "the child finished before it could be killed"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    state = json.loads(record.read_text())
    assert state["final"] is None and 40 <= state["step"] < spec.steps
    resumed = train(spec, killed_dir, threads=1)
    assert resumed.resumed_from == state["step"]
    assert resumed.final_loss == clean.final_loss
    a, _ = load_weights(clean.checkpoint)
    b, _ = load_weights(resumed.checkpoint)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    assert resumed.sha256 == clean.sha256  # content-addressed: the same weights are the same file
    assert [c.name for c in (killed_dir / "checkpoints").iterdir()] == [resumed.checkpoint.name]  # resume state cleaned up


def test_a_finished_model_is_not_trained_again(tmp_path):
    spec = plan(LADDER, 5e8, "direct", 1)
    first = train(spec, tmp_path, threads=1)
    calls = []
    again = train(spec, tmp_path, threads=1, progress=calls.append)
    assert again.checkpoint == first.checkpoint and not calls


def test_counted_flops_are_the_sum_over_the_steps_actually_taken(tmp_path):
    spec = plan(LADDER, 5e8, "cot", 2)
    seen = []
    trained = train(spec, tmp_path, threads=1, observe=lambda step, rows: seen.append((step, len(rows[0].inputs))))
    from oomlab.lab.model import training_flops

    assert [s for s, _ in seen] == list(range(spec.steps))
    assert trained.losses[-1][2] == pytest.approx(sum(training_flops(spec.config, spec.rows, T) for _, T in seen))
    assert spec.flops == pytest.approx(trained.losses[-1][2]) and spec.flops <= 5e8
    assert spec.tokens == spec.rows * sum(T for _, T in seen)

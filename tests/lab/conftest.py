"""Fixtures for the lab: a tiny model trained once per session (seconds, on CPU)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A one-layer model trained for a few dozen steps on lab-chain (cot): enough to emit the format."""
    pytest.importorskip("torch")
    from oomlab.lab.ladder import Ladder, plan
    from oomlab.lab.train import train

    ladder = Ladder("fixture", (3e8,), task="lab-chain", task_options={"max_ops": 3}, rows=16, lr=5e-3,
                    shapes=((16, 1),))
    spec = plan(ladder, 3e8, "cot", 0)
    trained = train(spec, tmp_path_factory.mktemp("lab"), threads=1, meta={"name": "fixture-cot"})
    return trained.checkpoint

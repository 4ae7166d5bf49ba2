"""A scripted backend: real sweeps into a real Store in milliseconds, with answers whose accuracy is set.

Each model answers a problem correctly with a chosen probability, decided by a hash of (model, prompt,
seed), so runs are deterministic and the cache behaves as with a real model. ``facts=False`` gives a
model without model facts (its compute falls back to tokens), as an HTTP model without flags would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from oomlab.backends.base import Generation, GenRequest, ModelFacts
from oomlab.store import Store
from oomlab.sweep import Sweep, SweepConfig
from oomlab.tasks import create_task


class ScriptedBackend:
    name = "scripted"

    def __init__(self, model_id: str, accuracy: float, references: dict[str, str], facts: bool = True,
                 n_params: int = 100_000_000):
        self.model_id = model_id
        self.accuracy = accuracy
        self.references = references
        if facts:
            self.facts = ModelFacts(model_id, n_params, int(0.9 * n_params), 12, 768, 768, 2048, source="test")
        else:
            self.facts = ModelFacts(model_id, 0, 0, 0, 0, 0, 0, source="unknown")

    def _uniform(self, prompt: str, seed: int) -> float:
        h = hashlib.sha256(f"{self.model_id}|{prompt}|{seed}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2**64

    def generate(self, request: GenRequest, on_sample: Callable | None = None) -> list[Generation]:
        ref = self.references[request.prompt]
        out = []
        for i, seed in enumerate(request.seeds):
            u = self._uniform(request.prompt, 0 if request.params.greedy else seed)
            text = ref if u < self.accuracy else str(int(ref) + 1 + int(10 * u))
            g = Generation(text, prompt_tokens=40, completion_tokens=4, seconds=0.001, seed=seed)
            if on_sample is not None:
                on_sample(i, g)
            out.append(g)
        return out

    def close(self) -> None:
        pass


def make_scripted_run(store: Store, model_id: str, accuracy: float, *, problems: int = 20, seed: int = 0,
                 facts: bool = True, strategies: tuple[str, ...] = ("greedy", "majority"), n: int = 8,
                 n_params: int = 100_000_000) -> str:
    """One finished sweep of the arithmetic task by a scripted model; returns its run id."""
    task = create_task("arithmetic")
    refs = {task.prompt(p): str(p.reference) for p in task.problems(problems, seed)}
    backend = ScriptedBackend(model_id, accuracy, refs, facts=facts, n_params=n_params)
    config = SweepConfig(problems=problems, n=n, strategies=list(strategies), seed=seed)
    return Sweep(config, store, backend=backend).run().run_id


@pytest.fixture
def scripted_db(tmp_path: Path):
    """(db path, make_run) where make_run(model_id, accuracy, **options) adds a scripted run."""
    db = tmp_path / "scripted.db"
    store = Store(db)

    def make(model_id: str, accuracy: float, **options) -> str:
        return make_scripted_run(store, model_id, accuracy, **options)

    yield db, make
    store.close()


@pytest.fixture(scope="session")
def scripted_run():
    """make_scripted_run itself, for module-scoped fixtures that fill their own Store."""
    return make_scripted_run

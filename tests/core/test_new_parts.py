"""Adding a draw strategy and a re-run strategy touches one file each: this one.

Both are defined here, registered by name, swept through the ordinary Sweep on a scripted backend
and read back by the ordinary analysis, with nothing else changed.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import pytest

from oomlab.analysis.curves import run_curves
from oomlab.estimators import register_estimator
from oomlab.store import Store, load_run
from oomlab.strategies.base import STRATEGIES, Attempt, Draw, DrawStrategy, Strategy
from oomlab.sweep import Sweep, SweepConfig
from oomlab.testing import ScriptedBackend


@register_estimator("first-answer")
def first_answer_at_k(answers, correct, scores, k) -> float:
    """Brute force over k-subsets: is the earliest answered sample of the subset correct?"""
    subsets = list(itertools.combinations(range(len(answers)), k))
    hits = 0
    for s in subsets:
        answered = [i for i in s if answers[i] is not None]
        hits += bool(answered) and correct[answered[0]]
    return hits / len(subsets)


class FirstAnswer(DrawStrategy):
    name: ClassVar[str] = "first-answer"
    description: ClassVar[str] = "the first sample that gives an answer (a test strategy)"

    def __init__(self, temperature: float = 0.8):
        self.temperature = temperature

    def select(self, draw: Draw, seed: int = 0) -> int | None:
        return next((i for i, a in enumerate(draw.answers) if a is not None), None)

    def estimator(self) -> dict[str, Any]:
        return {"name": "first-answer"}


class AskTwice(Strategy):
    name: ClassVar[str] = "ask-twice"
    description: ClassVar[str] = "greedy, then `budget` samples; answers greedy's unless all samples agree otherwise"

    def solve(self, problem, task, backend, budget, seed=0) -> Attempt:
        from oomlab.backends.base import GenRequest

        greedy = backend.generate(GenRequest(task.prompt(problem), task.sampling(), (seed,)))
        draw = DrawStrategy.sampling(FirstAnswer(), task)
        more = backend.generate(GenRequest(task.prompt(problem), draw, tuple(seed * 7 + i for i in range(budget))))
        answers = {task.extract(g.text) for g in more}
        answer = answers.pop() if len(answers) == 1 else task.extract(greedy[0].text)
        return Attempt(answer, task.check(answer, problem), tuple(greedy + more), {"n": 1 + budget})


@pytest.fixture
def registered():
    """Registered as a strategy file would register them, for this test only (other tests list the registry)."""
    for cls in (FirstAnswer, AskTwice):
        STRATEGIES.register(cls.name)(cls)
    yield
    for cls in (FirstAnswer, AskTwice):
        STRATEGIES.unregister(cls.name)


def test_a_new_draw_and_a_new_rerun_strategy_sweep_and_analyse(tmp_path, registered):
    store = Store(tmp_path / "new.db")
    try:
        config = SweepConfig(task="arithmetic", strategies=["first-answer", "ask-twice", "majority"], n=4, problems=5,
                             backend="scripted", ladder=[1, 2, 4])
        result = Sweep(config, store, backend=ScriptedBackend(script=lambda p, s: f" {s % 3}")).run()
        run = load_run(store, result.run_id)
        first, twice, majority = run_curves(run)
        assert first.key == "first-answer" and [r.k for r in first.rungs] == [1, 2, 4]
        assert run.spec.strategy_records["first-answer"]["estimator"] == {"name": "first-answer"}
        # every sample answers, so the first answered one is a random sample: rung k equals one sample's accuracy
        assert all(abs(r.accuracy - first.rungs[0].accuracy) < 1e-12 for r in first.rungs)
        assert first.rungs[0].accuracy == majority.rungs[0].accuracy  # same draw, same single-sample accuracy
        assert [r.k for r in twice.rungs] == [1, 2, 4] and twice.rungs[0].completion_tokens > 0
        costs = [r.tokens for r in twice.rungs]
        assert costs == sorted(costs) and costs[0] < costs[-1]  # a re-run strategy's rungs cost what they drew
    finally:
        store.close()

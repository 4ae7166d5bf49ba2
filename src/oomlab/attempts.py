"""The attempt runner: one strategy on one problem at one budget, through the metered backend, recorded.

The sweep, compute-ladder calibration and the lab run every attempt through it. It owns the one
bookkeeping channel: an attempt spent exactly the samples the metered backend served on this
thread while it ran (`MeteredBackend.take_used`) — the draw's, a judge's, a search's — so what is
on the books is what the hardware did, however the strategy reports its work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from oomlab.backends.base import Backend, SamplingParams
from oomlab.problem import Problem
from oomlab.store import AttemptRow, Store
from oomlab.strategies.base import DrawStrategy, Strategy, draw_trace
from oomlab.tasks.base import Task


class Metered(Backend, Protocol):
    """A backend that knows which samples it served to the calling thread (sweep.MeteredBackend)."""

    def take_used(self) -> list[int]: ...


@dataclass
class AttemptRunner:
    """Runs and records attempts of one run; an attempt already recorded is returned, never re-run."""

    task: Task
    backend: Metered
    store: Store
    run_id: str
    n: int  # samples per draw (a draw strategy's every rung is estimated from it)
    seed: int = 0

    def draw_size(self, params: SamplingParams) -> int:
        """N samples per problem for a sampled draw; greedy needs one."""
        return 1 if params.greedy else self.n

    def budgets(self, strategy: Strategy, rungs: list[int]) -> list[int]:
        """The budgets at which an attempt is recorded: a draw strategy's one draw, else each rung."""
        if isinstance(strategy, DrawStrategy):
            return [self.draw_size(strategy.sampling(self.task))]
        return rungs

    def run(self, key: str, strategy: Strategy, index: int, problem: Problem, rungs: list[int]) -> list[AttemptRow]:
        """`strategy` (stored as `key`) on problem `index` at every budget it runs at, recorded as it goes."""
        return [self.run_one(key, strategy, index, problem, b) for b in self.budgets(strategy, rungs)]

    def run_one(self, key: str, strategy: Strategy, index: int, problem: Problem, budget: int) -> AttemptRow:
        done = self.store.attempt(self.run_id, key, index, budget)
        if done is not None:
            return done
        spent = self.spend(strategy, problem, budget)
        row = AttemptRow(key, index, budget, spent.answer, spent.correct, spent.sample_ids, spent.trace)
        self.store.add_attempt(self.run_id, row)
        return row

    def spend(self, strategy: Strategy, problem: Problem, budget: int, backend: Backend | None = None) -> Spent:
        """Run `strategy` on `problem` at `budget` (not recorded): its answer and the samples it spent.

        `backend` is what the strategy talks to (default: the runner's metered backend; `oomlab serve`
        passes the request's capped view of it); the samples are read from the metered backend's
        books either way.
        """
        via = backend if backend is not None else self.backend
        self.backend.take_used()  # this thread's books start empty
        if isinstance(strategy, DrawStrategy):
            draw = strategy.draw(problem, self.task, via, budget, self.seed)
            strategy.extra_generations()  # reported beside the draw; the books have them from the backend
            pick = strategy.select(draw, self.seed)
            answer = None if pick is None else draw.answers[pick]
            correct, trace = self.task.check(answer, problem), draw_trace(draw)
            usage = strategy.take_verifier_usage()
            if usage:
                trace["verifier"] = usage  # scored once for the draw: each rung pays its k candidates' share
        else:
            attempt = strategy.solve(problem, self.task, via, budget, seed=self.seed)
            answer, correct, trace = attempt.answer, attempt.correct, dict(attempt.trace)
        return Spent(answer, correct, trace, self.backend.take_used())


@dataclass(frozen=True)
class Spent:
    """What one attempt answered and spent (the sample ids the metered backend served it)."""

    answer: str | None
    correct: bool
    trace: dict[str, Any]
    sample_ids: list[int]

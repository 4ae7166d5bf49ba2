"""Budgets in compute, not samples: map a ladder of tokens or FLOPs per problem onto each strategy's knob.

Strategies spend compute differently (a tree search's iteration costs more than a vote), so a
ladder in samples puts them at unrelated x positions. With `--budget-unit tokens|flops` the sweep
calibrates each strategy on the first problem — a draw strategy from its draw (prompt once plus
k completions), any other by running it at knobs 1 and 2 — and picks, for every budget B, the knob whose
cost comes closest to B without exceeding it (knob 1 at least). All strategies then sit at about
the same compute on one accuracy-vs-compute plot (re-run strategies are measured at knobs 1 and 2
and their cost taken as fixed + knob × per-unit); each rung's real, measured cost is what the
tables and plots show, so a calibration that misjudges a later problem is visible, never hidden.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oomlab.ledger import attempt_cost, completion_flops, prompt_flops
from oomlab.problem import Problem
from oomlab.strategies.base import DrawStrategy, Strategy

if TYPE_CHECKING:
    from oomlab.attempts import AttemptRunner

MAX_KNOB = 32  # a re-run strategy's knob is never pushed past this by a budget (CPU sweeps stay bounded)


def knobs_for(budgets: list[float], fixed: float, per_unit: float, cap: int) -> list[int]:
    """Largest knob k with fixed + k · per_unit <= B, for each budget B (at least 1, at most cap)."""
    out = set()
    for b in budgets:
        k = int((b - fixed) // per_unit) if per_unit > 0 else cap
        out.add(max(1, min(cap, k)))
    return sorted(out)


def calibrate(runner: AttemptRunner, strategies: dict[str, Strategy], problem: Problem, budgets: list[float],
              unit: str) -> dict[str, list[int]]:
    """Knob values per strategy key for a compute ladder in `unit` ("tokens" or "flops"), measured on
    `problem` (index 0) through the run's attempt runner, so calibration is on the books like any attempt."""
    out: dict[str, list[int]] = {}
    for key, strategy in strategies.items():
        if isinstance(strategy, DrawStrategy):
            out[key] = _draw_knobs(runner, key, strategy, problem, budgets, unit)
            continue
        c1, c2 = (_rerun_cost(runner, key, strategy, problem, knob, unit) for knob in (1, 2))
        per = max(c2 - c1, 0.0)  # cost = fixed + knob * per, from two points
        out[key] = knobs_for(budgets, c1 - per, per, MAX_KNOB)
    return out


def _rerun_cost(runner: AttemptRunner, key: str, strategy: Strategy, problem: Problem, knob: int, unit: str) -> float:
    """Measured cost of the strategy at `knob` on the first problem (stored as that rung's attempt)."""
    attempt = runner.run_one(key, strategy, 0, problem, knob)
    rows = runner.store.samples(attempt.sample_ids)
    cost = attempt_cost(((r.prompt, r.generation, r.joules) for r in rows.values()), runner.backend.facts)
    return cost.flops if unit == "flops" else cost.tokens


def _draw_knobs(runner: AttemptRunner, key: str, strategy: DrawStrategy, problem: Problem, budgets: list[float],
                unit: str) -> list[int]:
    n = runner.draw_size(strategy.sampling(runner.task))
    attempt = runner.run_one(key, strategy, 0, problem, n)  # the draw problem 0 needs anyway
    gens = [r.generation for r in runner.store.samples(attempt.sample_ids[:n]).values()]
    if n == 1:
        return [1]
    facts = runner.backend.facts
    P = gens[0].prompt_tokens
    if unit == "flops":
        fixed = prompt_flops(facts, P)
        per = sum(completion_flops(facts, P, g.completion_tokens) for g in gens) / n
    else:
        fixed, per = float(P), sum(g.completion_tokens for g in gens) / n
    return knobs_for(budgets, fixed, per, n)

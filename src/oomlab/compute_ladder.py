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
    from oomlab.sweep import MeteredBackend, Sweep

MAX_KNOB = 32  # a re-run strategy's knob is never pushed past this by a budget (CPU sweeps stay bounded)


def knobs_for(budgets: list[float], fixed: float, per_unit: float, cap: int) -> list[int]:
    """Largest knob k with fixed + k · per_unit <= B, for each budget B (at least 1, at most cap)."""
    out = set()
    for b in budgets:
        k = int((b - fixed) // per_unit) if per_unit > 0 else cap
        out.add(max(1, min(cap, k)))
    return sorted(out)


def calibrate(sweep: Sweep, run_id: str, problem: Problem, metered: MeteredBackend) -> dict[str, list[int]]:
    """Knob values per strategy key for the sweep's compute ladder, measured on `problem` (index 0)."""
    cfg, unit = sweep.config, sweep.config.budget_unit
    budgets = [float(b) for b in cfg.ladder or []]
    out: dict[str, list[int]] = {}
    for key, strategy in sweep.strategies.items():
        if isinstance(strategy, DrawStrategy):
            out[key] = _draw_knobs(sweep, strategy, problem, metered, budgets, unit)
            continue
        c1, c2 = (_rerun_cost(sweep, run_id, problem, key, strategy, metered, knob) for knob in (1, 2))
        per = max(c2 - c1, 0.0)  # cost = fixed + knob * per, from two points
        out[key] = knobs_for(budgets, c1 - per, per, MAX_KNOB)
    return out


def _rerun_cost(sweep: Sweep, run_id: str, problem: Problem, key: str, strategy: Strategy,
                metered: MeteredBackend, knob: int) -> float:
    """Measured cost of the strategy at `knob` on the first problem (stored as that rung's attempt)."""
    sweep._attempt(run_id, 0, problem, key, strategy, metered, [knob])
    ids = [i for a in sweep.store.attempts(run_id) if a.strategy == key and a.problem_idx == 0 and a.budget == knob
           for i in a.sample_ids]
    rows = sweep.store.samples(ids)
    prompt, completion, flops = attempt_cost(((r.prompt, r.generation) for r in rows.values()), metered.facts)
    return flops if sweep.config.budget_unit == "flops" else prompt + completion


def _draw_knobs(sweep: Sweep, strategy: DrawStrategy, problem: Problem, metered: MeteredBackend,
                budgets: list[float], unit: str) -> list[int]:
    from oomlab.backends.base import GenRequest
    from oomlab.strategies.base import draw_seeds

    params = strategy.sampling(sweep.task)
    n = sweep._draw_size(params)
    gens = metered.generate(GenRequest(sweep.task.prompt(problem), params, draw_seeds(sweep.config.seed, n),
                                       logprobs=strategy.needs_logprobs()))
    metered.take_used()
    if n == 1:
        return [1]
    P = gens[0].prompt_tokens
    if unit == "flops":
        fixed = prompt_flops(metered.facts, P)
        per = sum(completion_flops(metered.facts, P, g.completion_tokens) for g in gens) / n
    else:
        fixed, per = float(P), sum(g.completion_tokens for g in gens) / n
    return knobs_for(budgets, fixed, per, n)

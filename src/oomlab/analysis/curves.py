"""Scaling curves from a stored run: accuracy and cost per problem at every rung of the ladder.

Draw strategies: rung k is estimated from the one stored draw of N samples (exact expectations
over k-subsets, see analysis/estimators.py). Its cost is what a deployment at budget k pays: the
prompt once plus k completions (FLOPs: prompt_flops(P) + k · mean completion FLOPs); seconds,
joules and dollars are k × the mean per-sample share of the draw's wall time and energy.
Other strategies: each rung was run for real; its cost is the samples it caused, each distinct
prompt paid once in full (ledger.attempt_cost), seconds/joules/dollars as apportioned when drawn.

Intervals (see analysis/intervals.py): a rung whose column is one 0/1 outcome per problem (greedy,
a re-run strategy) gets the Wilson score interval; other rungs the percentile bootstrap over
problems. Each Rung names its method in ``interval``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from oomlab.analysis.intervals import column_intervals
from oomlab.ledger import HUMAN_TOKENS_PER_MINUTE, attempt_cost, charge, completion_flops, flops_known, prompt_flops
from oomlab.store import AttemptRow, SampleRow, Store
from oomlab.strategies.base import Draw, DrawStrategy, create_strategy


@dataclass(frozen=True)
class Rung:
    k: int
    accuracy: float
    lo: float
    hi: float
    prompt_tokens: float  # means per problem
    completion_tokens: float
    flops: float
    seconds: float
    joules: float
    dollars: float
    interval: str = ""  # how lo/hi were made: Wilson score (0/1 column) or percentile bootstrap

    @property
    def tokens(self) -> float:
        return self.prompt_tokens + self.completion_tokens

    @property
    def human_minutes(self) -> float:
        return self.completion_tokens / HUMAN_TOKENS_PER_MINUTE


@dataclass
class Curve:
    key: str
    label: str
    oracle: bool
    rungs: list[Rung]
    per_problem: np.ndarray = field(repr=False)  # problems × rungs accuracy
    energy_measured: bool = False

    def to_dict(self) -> dict:
        return {"strategy": self.key, "label": self.label, "oracle": self.oracle,
                "energy_measured": self.energy_measured,
                "rungs": [asdict(r) | {"tokens": r.tokens, "human_minutes": r.human_minutes} for r in self.rungs]}


def run_curves(store: Store, run_id: str, n_boot: int = 2000) -> list[Curve]:
    """One Curve per strategy of the run, in the order the sweep listed them."""
    info = store.run(run_id)
    attempts = store.attempts(run_id)
    samples = store.samples(sorted({i for a in attempts for i in a.sample_ids}))
    options = info.config.get("strategy_options", {})
    rungs_cfg: list[int] = info.config["ladder"]
    curves = []
    for key in info.config["strategies"]:
        mine = [a for a in attempts if a.strategy == key]
        if not mine:
            continue
        opts = dict(options.get(key, {"name": key}))
        strategy = create_strategy(opts.pop("name"), **opts)
        if isinstance(strategy, DrawStrategy):
            ks = info.config.get("rungs_by_strategy", {}).get(key) or strategy.budgets(rungs_cfg)
            acc, cost = _draw_rungs(strategy, mine, samples, info, ks)
        else:
            # rungs every problem reached (a compute ladder's calibration points exist for problem 0 only)
            n_problems = len({a.problem_idx for a in mine})
            ks = sorted(k for k in {a.budget for a in mine} if sum(a.budget == k for a in mine) == n_problems)
            mine = [a for a in mine if a.budget in ks]
            acc, cost = _rerun_rungs(mine, samples, info, ks)
        mean, lo, hi, methods = column_intervals(acc, n_boot=n_boot, seed=0)
        rungs = [Rung(k, float(mean[j]), float(lo[j]), float(hi[j]), *(float(c) for c in cost[:, j]), methods[j])
                 for j, k in enumerate(ks)]
        measured = all(samples[i].energy_measured for a in mine for i in a.sample_ids)
        curves.append(Curve(key, strategy.label(), strategy.oracle, rungs, acc, measured))
    return curves


def _draw_rungs(strategy: DrawStrategy, attempts: list[AttemptRow], samples: dict[int, SampleRow], info, ks: list[int]):
    by_problem = sorted(attempts, key=lambda a: a.problem_idx)
    acc = np.zeros((len(by_problem), len(ks)))
    cost = np.zeros((6, len(ks)))  # prompt, completion, flops, seconds, joules, dollars (summed, then averaged)
    for p, a in enumerate(by_problem):
        n = len(a.trace["answers"])
        rows = [samples[i] for i in a.sample_ids[:n]]
        extra = [samples[i] for i in a.sample_ids[n:]]  # e.g. a judge's samples, one per candidate
        gens = tuple(r.generation for r in rows)
        scores = a.trace.get("scores")
        draw = Draw(gens, tuple(a.trace["answers"]), tuple(a.trace["correct"]), None if scores is None else tuple(scores))
        P = gens[0].prompt_tokens
        completion = np.mean([g.completion_tokens for g in gens])
        if flops_known(info.facts):
            c_flops = np.mean([completion_flops(info.facts, P, g.completion_tokens) for g in gens])
            p_flops = prompt_flops(info.facts, P)
        else:
            c_flops = p_flops = float("nan")
        seconds = np.mean([g.seconds for g in gens])
        joules = np.mean([r.joules for r in rows])
        entries = [charge(g, info.facts, r.joules, r.energy_measured, info.pricing) for g, r in zip(gens, rows)]
        dollars = np.mean([e.dollars for e in entries])
        per_candidate = np.zeros(6)
        for r in extra:
            e = charge(r.generation, info.facts, r.joules, r.energy_measured, info.pricing)
            per_candidate += np.array([e.prompt_tokens, e.completion_tokens, e.flops, e.seconds, e.joules, e.dollars]) / n
        for j, k in enumerate(ks):
            acc[p, j] = strategy.estimate(draw, k)
            cost[:, j] += np.array((P, k * completion, p_flops + k * c_flops, k * seconds, k * joules, k * dollars)) + k * per_candidate
    return acc, cost / max(len(by_problem), 1)


def _rerun_rungs(attempts: list[AttemptRow], samples: dict[int, SampleRow], info, ks: list[int]):
    problems = sorted({a.problem_idx for a in attempts})
    row = {p: r for r, p in enumerate(problems)}
    acc = np.zeros((len(problems), len(ks)))
    cost = np.zeros((6, len(ks)))
    for a in attempts:
        j = ks.index(a.budget)
        acc[row[a.problem_idx], j] = float(a.correct)
        rows = [samples[i] for i in a.sample_ids]
        cost[:3, j] += attempt_cost(((r.prompt, r.generation) for r in rows), info.facts)
        for r in rows:
            e = charge(r.generation, info.facts, r.joules, r.energy_measured, info.pricing)
            cost[3:, j] += (e.seconds, e.joules, e.dollars)
    return acc, cost / max(len(problems), 1)

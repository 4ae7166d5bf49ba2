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
from typing import Any

import numpy as np

from oomlab.analysis.intervals import column_intervals
from oomlab.draws import Draw
from oomlab.estimators import estimate, estimator_names
from oomlab.ledger import Cost, attempt_cost, draw_cost, sample_cost
from oomlab.store import AttemptRow, RunData, Store, load_run


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
    verifier_tokens: float = 0.0  # a verifier's (PRM's) tokens, per problem; its FLOPs are in `flops`
    verifier_flops: float = 0.0

    @property
    def cost(self) -> Cost:
        return Cost(self.prompt_tokens, self.completion_tokens, self.flops, self.seconds, self.joules, self.dollars,
                    self.verifier_tokens, self.verifier_flops)

    @property
    def tokens(self) -> float:
        return self.cost.tokens

    @property
    def human_minutes(self) -> float:
        return self.cost.human_minutes


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


def strategy_record(run: RunData, key: str) -> dict[str, Any]:
    """What the sweep wrote of a strategy (label, oracle, kind, estimator); older runs get it derived."""
    record = run.spec.strategy_records.get(key)
    if record is None:  # a run written before strategy records: derived from its options, once
        from oomlab.strategies.records import legacy_record

        record = legacy_record(key, run.spec.options_of(key))
    estimator = record.get("estimator")
    if estimator is not None and estimator["name"] not in estimator_names():
        from oomlab.strategies.records import load_estimators  # one registered beside its strategy

        load_estimators()
    return record


def run_curves(run: RunData | Store, run_id: str | None = None, n_boot: int = 2000) -> list[Curve]:
    """One Curve per strategy of the run, in the order the sweep listed them (`run_curves(load_run(...))`;
    `run_curves(store, run_id)` loads it)."""
    if isinstance(run, Store):
        if run_id is None:
            raise TypeError("run_curves(store, run_id): give the run id")
        run = load_run(run, run_id)
    spec = run.spec
    curves = []
    for key in spec.strategies:
        mine = run.attempts_of(key)
        if not mine:
            continue
        record = strategy_record(run, key)
        if record["kind"] == "draw":
            ks = spec.rungs_by_strategy.get(key) or _draw_budgets(record, spec.ladder)
            acc, costs = _draw_rungs(record, mine, run, ks)
        else:
            # rungs every problem reached (a compute ladder's calibration points exist for problem 0 only)
            n_problems = len({a.problem_idx for a in mine})
            ks = sorted(k for k in {a.budget for a in mine} if sum(a.budget == k for a in mine) == n_problems)
            mine = [a for a in mine if a.budget in ks]
            acc, costs = _rerun_rungs(mine, run, ks)
        mean, lo, hi, methods = column_intervals(acc, n_boot=n_boot, seed=0)
        rungs = [rung(k, float(mean[j]), float(lo[j]), float(hi[j]), costs[j], methods[j]) for j, k in enumerate(ks)]
        measured = all(run.samples[i].energy_measured for a in mine for i in a.sample_ids)
        curves.append(Curve(key, record["label"], bool(record["oracle"]), rungs, acc, measured))
    return curves


def rung(k: int, accuracy: float, lo: float, hi: float, cost: Cost, interval: str) -> Rung:
    return Rung(k, accuracy, lo, hi, cost.prompt_tokens, cost.completion_tokens, cost.flops, cost.seconds, cost.joules,
                cost.dollars, interval, cost.verifier_tokens, cost.verifier_flops)


def _draw_budgets(record: dict[str, Any], ladder: list[int]) -> list[int]:
    """A one-sample strategy (sample, greedy) sits at budget 1; any other draw at every rung."""
    return [1] if record["estimator"]["name"] == "mean" else ladder


def _draw_rungs(record: dict[str, Any], attempts: list[AttemptRow], run: RunData, ks: list[int]):
    info = run.info
    by_problem = sorted(attempts, key=lambda a: a.problem_idx)
    acc = np.zeros((len(by_problem), len(ks)))
    costs = [Cost() for _ in ks]  # summed over problems, then averaged
    for p, a in enumerate(by_problem):
        n = len(a.trace["answers"])
        rows = run.rows(a)
        mine, extra = rows[:n], rows[n:]  # extra: e.g. a judge's samples, one per candidate
        draw = Draw.from_trace(tuple(r.generation for r in mine), a.trace)
        per_candidate = (Cost.total(sample_cost(r.generation, info.facts, r.joules, info.pricing) for r in extra)
                         + Cost.of_verifier(a.trace.get("verifier"))) / n  # a judge's samples, a PRM's reading
        for j, k in enumerate(ks):
            acc[p, j] = estimate(record["estimator"], draw.answers, draw.correct, draw.scores, k)
            costs[j] = costs[j] + draw_cost(((r.generation, r.joules) for r in mine), info.facts, info.pricing, k) \
                + k * per_candidate
    return acc, [c / max(len(by_problem), 1) for c in costs]


def _rerun_rungs(attempts: list[AttemptRow], run: RunData, ks: list[int]):
    info = run.info
    problems = sorted({a.problem_idx for a in attempts})
    row = {p: r for r, p in enumerate(problems)}
    acc = np.zeros((len(problems), len(ks)))
    costs = [Cost() for _ in ks]
    for a in attempts:
        j = ks.index(a.budget)
        acc[row[a.problem_idx], j] = float(a.correct)
        costs[j] = costs[j] + attempt_cost(((r.prompt, r.generation, r.joules) for r in run.rows(a)), info.facts,
                                           info.pricing) + Cost.of_verifier(a.trace.get("verifier"))
    return acc, [c / max(len(problems), 1) for c in costs]

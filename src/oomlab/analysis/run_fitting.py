"""The fits of one stored run (every strategy's curve, reach targets, difficulty), computed once,
so `oomlab fit` and the HTML report print the same numbers.

Per strategy curve (see :mod:`oomlab.analysis.curve_fitting` for the laws and their refusals):

* ``logistic`` — accuracy vs log10 FLOPs per problem (floor fixed at 0 by default: an
  exact-match answer is not guessed as compute goes to zero, and it saves a parameter on
  short ladders);
* ``coverage`` — pass@k vs samples k, c(k) = exp(a k^b) (Brown et al. 2024, arXiv
  2407.21787, §3), for oracle curves only: it is a law of coverage, not of accuracy;
* ``error-power-law`` — 1 - accuracy vs FLOPs.

Each fit either gives numbers or records why it was refused (too few rungs, a flat curve,
no convergence). For every fit that stands, the compute to reach a few targets above the
best measured accuracy, each refused where the fit does not support it; one that lies outside
the measured rungs says that it assumes the law holds there, and carries the fit's held-out-rung
check (curve_fitting.HoldoutCheck): "unreliable" when the last rung fell outside the band predicted from
the others.

Difficulty (Snell et al. 2024, arXiv 2408.03314, §3.2): problems are binned by pass@1
estimated from the run's sampled draw; per bin, the compute-optimal non-oracle
(strategy, rung) at each budget and its gain over one strategy for all problems.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from oomlab.analysis.curves import Curve, run_curves, strategy_record
from oomlab.analysis.difficulty import bin_by_pass1, compute_optimal_by_difficulty
from oomlab.analysis.exchange_rate import ModelRun, UnitMismatchError, check_unit
from oomlab.analysis.curve_fitting import CurveFit, fit_curve
from oomlab.errors import ConfigError, FitError
from oomlab.numbers import json_safe
from oomlab.store import RunData, Store, load_run

__all__ = ["LawFit", "ReachTarget", "RunFits", "StrategyFits", "curve_compute", "exchange_models", "fit_run",
           "pick_curve"]

ORACLE_NOTE = "oracle — coverage, not deployable accuracy"
DEFAULT_GAINS = (0.05, 0.10)


@dataclass(frozen=True)
class ReachTarget:
    """Compute a fit says reaches ``target`` accuracy (value and interval), or why it cannot say."""

    target: float
    basis: str  # how the target was chosen, e.g. "best measured + 10 points"
    compute: float | None = None
    lo: float | None = None
    hi: float | None = None
    refused: str | None = None
    extrapolated_ooms: float = 0.0  # how far the compute lies outside the measured rungs (0 inside)
    extrapolation: str = "none"  # "none" (inside the rungs), "checked", "unreliable", "unchecked"
    note: str | None = None  # for an extrapolation: the assumption it rests on and the held-out check

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "basis": self.basis, "compute": self.compute, "lo": self.lo,
                "hi": self.hi, "refused": self.refused, "extrapolated_ooms": self.extrapolated_ooms,
                "extrapolation": self.extrapolation, "note": self.note}


@dataclass(frozen=True)
class LawFit:
    """One law fitted to one curve: its CurveFit summary, or the refusal message."""

    law: str
    x_axis: str  # what the fit's compute axis counts
    fit: dict[str, Any] | None = None
    refused: str | None = None
    reach: tuple[ReachTarget, ...] = ()
    curve_fit: CurveFit | None = field(default=None, repr=False, compare=False)  # for figures; not serialised

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.law, "x_axis": self.x_axis, "fit": self.fit, "refused": self.refused,
                "reach": [r.to_dict() for r in self.reach]}


@dataclass(frozen=True)
class StrategyFits:
    strategy: str
    label: str
    oracle: bool
    ks: tuple[int, ...]
    compute: tuple[float, ...]  # per rung, in the run's compute unit
    accuracy: tuple[float, ...]  # mean over problems per rung
    laws: tuple[LawFit, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "label": self.label, "oracle": self.oracle,
                "oracle_note": ORACLE_NOTE if self.oracle else None, "k": list(self.ks),
                "compute": list(self.compute), "accuracy": list(self.accuracy),
                "fits": [law.to_dict() for law in self.laws]}


@dataclass(frozen=True)
class RunFits:
    """Every fit of one run; ``to_dict()`` is what `oomlab fit --json` prints and the report embeds."""

    run_id: str
    model_id: str
    task: str
    n_problems: int
    n_boot: int
    seed: int
    compute_unit: str  # "FLOPs" (model facts known) or "tokens"
    logistic_floor: float | None
    strategies: tuple[StrategyFits, ...]
    difficulty: dict[str, Any] | None
    difficulty_refused: str | None
    pass1_source: str | None

    def to_dict(self) -> dict[str, Any]:
        return json_safe({
            "run_id": self.run_id, "model_id": self.model_id, "task": self.task,
            "n_problems": self.n_problems, "n_boot": self.n_boot, "seed": self.seed,
            "compute_unit": self.compute_unit, "logistic_floor": self.logistic_floor,
            "strategies": [s.to_dict() for s in self.strategies],
            "difficulty": self.difficulty, "difficulty_refused": self.difficulty_refused,
            "pass1_source": self.pass1_source,
        })


def curve_compute(curves: Sequence[Curve]) -> tuple[str, dict[str, np.ndarray]]:
    """Per-rung compute of every curve: FLOPs when known for all, else tokens (labelled so)."""
    flops = {c.key: np.array([r.flops for r in c.rungs], dtype=float) for c in curves}
    if all(np.all(np.isfinite(v)) and np.all(v > 0) for v in flops.values()):
        return "FLOPs", flops
    return "tokens", {c.key: np.array([r.tokens for r in c.rungs], dtype=float) for c in curves}


def _reach(fit: CurveFit, best: float, gains: Sequence[float], targets: Sequence[float]) -> tuple[ReachTarget, ...]:
    wanted = [(best + g, f"best measured + {100 * g:g} points") for g in gains]
    wanted += [(t, "requested") for t in targets]
    out = []
    for target, basis in wanted:
        target = round(float(target), 6)
        if not 0.0 < target < 1.0:
            out.append(ReachTarget(target, basis, refused=f"target {100 * target:.1f}% is not below 100%"))
            continue
        try:
            value, lo, hi = fit.compute_for(target)
        except FitError as e:
            out.append(ReachTarget(target, basis, refused=str(e)))
        else:
            far = float(fit.ooms_outside(value))
            kind = "none" if far == 0.0 else fit.holdout.extrapolation
            out.append(ReachTarget(target, basis, value, lo, hi, None, far, kind, fit.extrapolation_note(value)))
    return tuple(out)


def _fit_law(law: str, x_axis: str, x: np.ndarray, per_problem: np.ndarray, best: float, *, floor, n_boot,
             seed, gains, targets) -> LawFit:
    try:
        fit = fit_curve(law, x, per_problem, floor=floor if law == "logistic" else None, n_boot=n_boot, seed=seed)
    except FitError as e:
        return LawFit(law, x_axis, refused=str(e))
    except ConfigError as e:  # data the fitter cannot take at all (e.g. compute not increasing)
        return LawFit(law, x_axis, refused=str(e))
    return LawFit(law, x_axis, fit.to_dict(), None, _reach(fit, best, gains, targets), fit)


def _sampled_draw_keys(run: RunData, curves: Sequence[Curve]) -> list[str]:
    """Curves of draw strategies that sample (temperature > 0): their k=1 column is pass@1 of the draw.

    Read from the strategy records the sweep wrote (a strategy no longer registered reads as a re-run)."""
    keys = []
    for c in curves:
        record = strategy_record(run, c.key)
        sampling = record.get("sampling") or {}
        if record.get("kind") == "draw" and sampling.get("temperature", 0) > 0 and c.rungs and c.rungs[0].k == 1:
            keys.append(c.key)
    return keys


def _difficulty(run, curves, compute, n_bins) -> tuple[dict | None, str | None, str | None]:
    keys = _sampled_draw_keys(run, curves)
    if not keys:
        return None, "difficulty needs pass@1 from a sampled draw: add a strategy such as sample or majority", None
    by_key = {c.key: c for c in curves}
    pass1 = np.mean([by_key[k].per_problem[:, 0] for k in keys], axis=0)
    source = f"mean k=1 column of {', '.join(keys)} (pass@1 of the draw)"
    deployable = [c for c in curves if not c.oracle]
    if not deployable:
        return None, "difficulty compares deployable strategies; every strategy of this run is an oracle", source
    try:
        bins = bin_by_pass1(pass1, n_bins=min(n_bins, pass1.size))
        result = compute_optimal_by_difficulty(
            {c.key: c.per_problem for c in deployable}, {c.key: compute[c.key] for c in deployable}, bins)
    except (ConfigError, FitError) as e:
        return None, str(e), source
    d = result.to_dict()
    d["strategies"] = [c.key for c in deployable]
    d["excluded_oracles"] = [c.key for c in curves if c.oracle]
    return d, None, source


def fit_run(
    run: RunData | Store,
    run_id: str | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    logistic_floor: float | None = 0.0,
    gains: Sequence[float] = DEFAULT_GAINS,
    targets: Sequence[float] = (),
    n_bins: int = 5,
    curves: Sequence[Curve] | None = None,
) -> RunFits:
    """Fit every strategy curve of a run (logistic, coverage for oracles, error power law),
    the compute to reach targets, and the compute-optimal strategy per difficulty bin.

    Deterministic: every bootstrap is seeded with ``seed``. ``curves`` may be passed in when
    the caller already has them (they must come from ``run_curves(run, n_boot=n_boot)``).
    `fit_run(load_run(store, run_id))`; `fit_run(store, run_id)` loads it.
    """
    if isinstance(run, Store):
        if run_id is None:
            raise TypeError("fit_run(store, run_id): give the run id")
        run = load_run(run, run_id)
    info = run.info
    curves = list(curves) if curves is not None else run_curves(run, n_boot=max(n_boot, 1))
    unit, compute = curve_compute(curves)
    x_axis = f"{unit} per problem"
    out = []
    for c in curves:
        y = c.per_problem.mean(axis=0)
        best = float(y.max()) if y.size else math.nan
        kw = dict(floor=logistic_floor, n_boot=n_boot, seed=seed, gains=gains, targets=targets)
        laws = [_fit_law("logistic", x_axis, compute[c.key], c.per_problem, best, **kw)]
        if c.oracle:
            ks = np.array([r.k for r in c.rungs], dtype=float)
            laws.append(_fit_law("coverage", "samples k", ks, c.per_problem, best, **kw))
        laws.append(_fit_law("error-power-law", x_axis, compute[c.key], c.per_problem, best, **kw))
        out.append(StrategyFits(c.key, c.label, c.oracle, tuple(r.k for r in c.rungs),
                                tuple(float(v) for v in compute[c.key]), tuple(float(v) for v in y), tuple(laws)))
    difficulty, refused, source = _difficulty(run, curves, compute, n_bins)
    n_problems = max((c.per_problem.shape[0] for c in curves), default=0)
    return RunFits(run.id, info.model_id, info.task, n_problems, n_boot, seed, unit, logistic_floor,
                   tuple(out), difficulty, refused, source)


def pick_curve(curves: Sequence[Curve], strategy: str | None = None) -> Curve:
    """The curve that stands for a run's test-time scaling: ``strategy`` if named, else the
    non-oracle curve with the most rungs (the first such in sweep order)."""
    if strategy is not None:
        for c in curves:
            if c.key == strategy:
                return c
        raise ConfigError(f"the run has no strategy '{strategy}'; it has {', '.join(c.key for c in curves)}")
    deployable = [c for c in curves if not c.oracle]
    if not deployable:
        raise ConfigError("every strategy of the run is an oracle; name one with --strategy to use it anyway")
    return max(deployable, key=lambda c: len(c.rungs))  # max keeps the first of equals


def exchange_models(
    store: Store | Mapping[str, RunData],
    run_ids: Sequence[str],
    train_flops: Sequence[float],
    *,
    strategy: str | None = None,
    unit: str | None = None,
    curves_by_run: dict[str, list[Curve]] | None = None,
) -> tuple[list[ModelRun], str]:
    """One ModelRun per run for the exchange rate, all in ONE test-time compute unit, and that unit.

    ``unit`` None: FLOPs when every run records model facts, tokens when none does, and a refusal
    (UnitMismatchError) when some do and some do not. 'flops' refuses a run without facts;
    'tokens' counts every run in tokens (prompt + completion per problem).
    """
    loaded: Mapping[str, RunData] = (store if not isinstance(store, Store)
                                     else {rid: load_run(store, rid) for rid in run_ids})  # each run read once
    wanted = None if unit is None else check_unit(unit)
    if len(train_flops) != len(run_ids):
        raise ConfigError(f"give --train-flops once per run ({len(run_ids)} runs, {len(train_flops)} values)")
    picked = []
    for rid in run_ids:
        curves = curves_by_run[rid] if curves_by_run is not None else run_curves(loaded[rid], n_boot=1)
        c = pick_curve(curves, strategy)
        own_unit, compute = curve_compute([c])
        picked.append((rid, c, own_unit, compute[c.key]))
    no_facts = [rid for rid, _, u, _ in picked if u == "tokens"]
    if wanted is None:
        if no_facts and len(no_facts) < len(picked):
            raise UnitMismatchError(
                f"run(s) {', '.join(no_facts)} record no model facts, so their test-time compute is in tokens, "
                "while the others are in FLOPs; an exchange rate cannot mix the two: give --unit tokens to count "
                "every run in tokens")
        wanted = "tokens" if no_facts else "FLOPs"
    elif wanted == "FLOPs" and no_facts:
        raise UnitMismatchError(f"run(s) {', '.join(no_facts)} record no model facts, so their FLOPs are unknown; "
                                "give --unit tokens to count every run in tokens")
    models = []
    for (rid, c, own_unit, x), tf in zip(picked, train_flops):
        if wanted != own_unit:
            x = np.array([r.tokens for r in c.rungs], dtype=float)
        models.append(ModelRun(f"{loaded[rid].info.model_id.split('@')[0]} ({rid}, {c.key})", tf, x, c.per_problem,
                               unit=wanted))
    return models, wanted

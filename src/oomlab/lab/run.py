"""`oomlab lab run` without the terminal: train the ladder, sweep every model, compute the answers.

Each step skips what is already done: a trained model is read back from its record, a finished
sweep is found in the Store by its configuration (the ordinary resume), so a killed lab restarts
where it stopped, and a finished one re-renders its report in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from oomlab.errors import FitError
from oomlab.lab.exchange import (
    BASELINE,
    CHANCE_MARGIN,
    Gain,
    LabPoint,
    Lift,
    RateBound,
    compute_equivalent_gains,
    exchange,
    iso_targets,
    lift,
    load_points,
    rate_bounds,
    rungs_of,
)
from oomlab.lab.ladder import Ladder
from oomlab.lab.summary import budget_text, lab_dir_for
from oomlab.lab.train import TrainedModel, TrainProgress, TrainSpec, train
from oomlab.store import Store
from oomlab.sweep import Sweep, SweepConfig


class LabProgress(Protocol):
    """What a front end is told as the lab runs (the CLI draws progress bars from it)."""

    def training(self, index: int, total: int, name: str, spec: TrainSpec) -> Callable[[TrainProgress], None]: ...
    def trained(self, name: str, model: TrainedModel) -> None: ...
    def sweeping(self, index: int, total: int, name: str, units: int) -> Callable[[int, int, str], None]: ...
    def note(self, text: str) -> None: ...


class _Quiet:
    def training(self, index, total, name, spec):
        return lambda p: None

    def trained(self, name, model):
        pass

    def sweeping(self, index, total, name, units):
        return lambda done, total, key: None

    def note(self, text):
        pass


def model_name(fmt: str, budget: float, seed: int) -> str:
    return f"{fmt}-{budget_text(budget)}-s{seed}"


@dataclass
class LabResult:
    """Everything the report shows, computed once from the Store and the model records."""

    ladder: Ladder
    entries: list[dict[str, Any]]  # one per model: name, budget, format, seed, flops, shape, run id, ...
    points: list[LabPoint]
    exchange: dict[str, Any] = field(default_factory=dict)  # format -> ExchangeRate | error text
    gains: dict[str, list[Gain]] = field(default_factory=dict)  # "strategy@k" / "cot vs direct" -> gains
    lifts: list[Lift] = field(default_factory=list)
    bounds: dict[str, list[RateBound]] = field(default_factory=dict)  # format -> lower bounds on the rate
    chance: float = 0.0  # the task's accuracy of a uniform guess
    exchange_key: str = ""  # the stored strategy key whose iso-accuracy lines give the exchange rate
    exchange_label: str = ""  # ... and its label

    @property
    def primary(self) -> str:
        return self.ladder.primary if self.ladder.primary in self.ladder.formats else self.ladder.formats[0]


def run_lab(ladder: Ladder, db: str | Path, *, device: str = "cpu", threads: int | None = None,
            progress: LabProgress | None = None, n_boot: int = 1000,
            observe: Callable[[str, int, list], None] | None = None, jobs: int = 1) -> LabResult:
    """Train (or resume) every model of the ladder, sweep each through the ordinary Sweep, analyse.

    `jobs` > 1 trains and sweeps that many models at once, each in a process of its own with
    `threads` torch threads (`oomlab.lab.jobs`): on CPU the ladder's small models use one core
    each far better than two cores together. Every process writes to the one database.
    """
    progress = progress or _Quiet()
    lab_dir = lab_dir_for(db)
    lab_dir.mkdir(parents=True, exist_ok=True)
    specs = ladder.specs()
    parallel = jobs > 1 and len(specs) > 1
    if parallel:
        if observe is not None:
            raise ValueError("observe needs jobs=1: batches are seen in the process that trains")
        from oomlab.lab.jobs import run_parallel

        entries = run_parallel(ladder, db, specs, device=device, threads=threads, jobs=jobs, progress=progress)
    store = Store(db)
    try:
        if not parallel:
            entries = [train_and_sweep(ladder, store, lab_dir, i, len(specs), budget, fmt, seed, spec, device=device,
                                       threads=threads, progress=progress, observe=observe)
                       for i, (budget, fmt, seed, spec) in enumerate(specs)]
        points = load_points(store, entries)
    finally:
        store.close()
    return analyse(ladder, entries, points, n_boot=n_boot)


def train_and_sweep(ladder: Ladder, store: Store, lab_dir: Path, index: int, total: int, budget: float, fmt: str,
                    seed: int, spec: TrainSpec, *, device: str, threads: int | None, progress: LabProgress,
                    observe: Callable[[str, int, list], None] | None = None) -> dict[str, Any]:
    """One model of the ladder: train (or resume) it, sweep it, and return its entry."""
    from oomlab.backends.torch import TorchBackend

    name = model_name(fmt, budget, seed)
    trained = train(spec, lab_dir, device=device, threads=threads, meta={"name": name, "budget": budget},
                    progress=progress.training(index, total, name, spec),
                    observe=None if observe is None else (lambda step, rows: observe(name, step, rows)))
    progress.trained(name, trained)
    backend = TorchBackend(str(trained.checkpoint), device=device, threads=threads)
    config = SweepConfig(task=spec.task, task_options=spec.task_options, backend="torch",
                         backend_options={"checkpoint": str(trained.checkpoint), "device": device},
                         strategies=ladder.strategies(), n=ladder.n, problems=ladder.problems, seed=0)
    try:
        result = Sweep(config, store, backend=backend).run(
            progress=progress.sweeping(index, total, name, ladder.problems * len(config.strategies)))
    finally:
        backend.close()
    c = spec.config
    return {"name": name, "budget": budget, "format": fmt, "seed": seed, "train_flops": spec.flops,
            "train_tokens": spec.tokens, "n_params": c.n_params_non_embedding, "n_params_total": c.n_params,
            "d_model": c.d_model, "n_layer": c.n_layer, "steps": spec.steps, "rows": spec.rows, "lr": spec.lr,
            "train_seconds": trained.seconds, "final_loss": trained.final_loss, "losses": trained.losses,
            "run_id": result.run_id, "model_id": backend.model_id, "checkpoint": str(trained.checkpoint),
            "sha256": trained.sha256}


def analyse(ladder: Ladder, entries: list[dict[str, Any]], points: list[LabPoint], n_boot: int = 1000) -> LabResult:
    """Exchange rate per format, CEG of every sampled strategy (at k = 1, 4, n) and of CoT training, lifts.

    Accuracies within CHANCE_MARGIN of the task's chance level (1/7 on lab-chain, 0 on lab-sum) are
    too little to price: they give no iso-accuracy targets, no gains and no bounds, which noise around
    chance would otherwise invent.
    """
    from oomlab.tasks.base import create_task

    result = LabResult(ladder, entries, points)
    sampled = [k for k in ladder.strategies() if k != BASELINE]
    key = exchange_key(points)
    result.exchange_key, result.exchange_label = key, short_label(key, False)
    budgets = sorted({p.budget for p in points})
    chance = getattr(create_task(ladder.task, **ladder.task_options), "chance", 0.0)
    floor = chance + CHANCE_MARGIN
    result.chance = chance
    for fmt in ladder.formats:
        try:
            result.exchange[fmt] = exchange(points, fmt, key, n_boot=n_boot,
                                            targets=iso_targets(chance, CHANCE_MARGIN))
        except FitError as e:
            result.exchange[fmt] = f"refused: {e}"
        result.bounds[fmt] = rate_bounds(points, fmt, key, floor)
    for fmt in ladder.formats:
        base = rungs_of(points, fmt, BASELINE)
        if len(base) < 2:
            continue
        greedy_flops = {p.name: p.curve(BASELINE).test_flops[0] for p in points if p.format == fmt}
        for spec_key in sampled:
            key = strategy_key(points, spec_key.split(":")[0], spec_key)
            curve0 = next(p for p in points if p.format == fmt).curve(key)
            for j, k in enumerate(curve0.ks):
                if k not in (1, 4, ladder.n) and j != len(curve0.ks) - 1:
                    continue
                treated = rungs_of(points, fmt, key, j)
                mine = [p for p in points if p.format == fmt and p.seed == min(ladder.seeds)]
                cost = [p.curve(key).test_flops[j] / greedy_flops[p.name] for p in mine]
                label = f"{short_label(key, curve0.oracle)}@{k}"
                result.gains[f"{fmt}: {label}"] = compute_equivalent_gains(
                    base, treated, [f"{label} on {fmt} {budget_text(b)}" for b in budgets], test_cost=cost,
                    n_boot=n_boot, floor=floor)
        for p in points:
            if p.format == fmt and p.seed == min(ladder.seeds):
                for key in deployable_keys(points) + [strategy_key(points, "best-of-n", "oracle")]:
                    result.lifts.append(replace(lift(p, key), strategy=short_label(key, p.curve(key).oracle)))
    if "cot" in ladder.formats and "direct" in ladder.formats:
        base, treated = rungs_of(points, "direct", BASELINE), rungs_of(points, "cot", BASELINE)
        direct_cost = {p.budget: p.curve(BASELINE).test_flops[0] for p in points if p.format == "direct"}
        cost = [p.curve(BASELINE).test_flops[0] / direct_cost[p.budget] for p in points
                if p.format == "cot" and p.seed == min(ladder.seeds)]
        result.gains["cot training vs direct training (greedy)"] = compute_equivalent_gains(
            base, treated, [f"cot {budget_text(r.budget)}" for r in treated], test_cost=cost, n_boot=n_boot,
            floor=floor)
    return result


CHECK_LABEL = "best-of-n[check (reads the problem, not the answer)]"


def short_label(key: str, oracle: bool) -> str:
    """'best-of-n:scorer=logprob,temperature=1.0' -> 'best-of-n[logprob]'; oracles say so, and the task's
    reference-free checker says what it reads."""
    from oomlab.sweep import parse_spec

    name, options = parse_spec(key)
    if name == "best-of-n" and options.get("scorer") == "check":
        return CHECK_LABEL
    label = f"{name}[{options['scorer']}]" if "scorer" in options else name
    return f"{label} (oracle)" if oracle else label


def deployable_keys(points: list[LabPoint]) -> list[str]:
    """The stored keys of the sampled strategies that read no reference: majority, best-of-n[logprob] and,
    where the task's checker reads only the problem, best-of-n[check]."""
    keys = [strategy_key(points, "majority"), strategy_key(points, "best-of-n", "scorer=logprob")]
    return keys + [k for k in points[0].curves if k.startswith("best-of-n:") and "scorer=check" in k]


def exchange_key(points: list[LabPoint]) -> str:
    """The strategy whose iso-accuracy lines give the exchange rate: the best deployable one the ladder has.

    Best-of-n[check] where the task's checker reads only the problem (exact, so its curve climbs with
    every sample: the lines of the most test-time compute a deployed system can use); else majority
    voting. Never an oracle: an exchange rate read off coverage would price what no deployed system
    buys.
    """
    check = [k for k in deployable_keys(points) if "scorer=check" in k]
    return check[0] if check else strategy_key(points, "majority")


def strategy_key(points: list[LabPoint], name: str, contains: str = "") -> str:
    """The stored strategy key of `name` (the first with `contains` in it; best-of-n: the non-oracle one)."""
    keys = list(points[0].curves)
    for k in keys:
        if k.split(":")[0] != name:
            continue
        if contains and contains not in k:
            continue
        if not contains and name == "best-of-n" and ("oracle" in k or "scorer=check" in k):
            continue
        return k
    raise KeyError(f"no strategy {name!r} ({contains}) among {keys}")


def summary(result: LabResult) -> dict[str, Any]:
    """The lab's numbers as plain JSON: what `oomlab ooms --lab` and the README read."""
    ladder = result.ladder
    models = []
    for e, p in zip(result.entries, result.points):
        g = p.curve(BASELINE)
        models.append({k: v for k, v in e.items() if k != "losses"} | {
            "greedy": {"accuracy": float(g.accuracy[0]), "lo": g.lo[0], "hi": g.hi[0]},
            "curves": {c.label: {"k": list(c.ks), "accuracy": [float(a) for a in c.accuracy], "lo": list(c.lo),
                                 "hi": list(c.hi), "test_flops": list(c.test_flops), "oracle": c.oracle}
                       for c in p.curves.values()}})
    exchange_out = {}
    for fmt, er in result.exchange.items():
        exchange_out[fmt] = er if isinstance(er, str) else er.to_dict() | {"rate_text": er.rate_text}
    return {
        "ladder": {"name": ladder.name, "task": ladder.task, "task_options": ladder.task_options,
                   "budgets": list(ladder.budgets), "formats": list(ladder.formats), "seeds": list(ladder.seeds),
                   "primary": result.primary, "tokens_per_param": ladder.tokens_per_param, "problems": ladder.problems, "n": ladder.n,
                   "temperature": ladder.temperature, "strategies": ladder.strategies()},
        "models": models,
        "exchange_rate": exchange_out,
        "exchange_rate_bounds": {f: [b.as_dict() for b in v] for f, v in result.bounds.items()},
        "gains": {k: [g.as_dict() for g in v] for k, v in result.gains.items()},
        "lifts": [lf.as_dict() for lf in result.lifts],
        "chance": result.chance,
        "exchange_strategy": {"key": result.exchange_key, "label": result.exchange_label,
                              "why": "the exchange rate is read along iso-accuracy lines of this deployable "
                                     "strategy's curves (no oracle)"},
        "label": f"measured on the lab task ({ladder.task}, ladder '{ladder.name}')",
    }

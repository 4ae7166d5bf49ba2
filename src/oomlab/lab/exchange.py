"""The lab's answers: exchange rate, compute-equivalent gains and test-time lifts, each with an interval.

Read once from the Store (`load_points`) into typed records, then computed here:

- exchange rate: OOMs of test-time compute that replace one OOM of training compute, along
  iso-accuracy lines (Jones 2021, arXiv 2104.03113, §IV-C), by analysis.exchange_rate on the
  ladder's models; interval: a bootstrap over problems (paired: every model answered the same
  problems), and over training seeds too where the ladder has several.
- compute-equivalent gain (CEG; Davidson et al. 2023, "AI capabilities can be significantly
  improved without expensive retraining", arXiv 2312.07413): the factor of extra training
  compute the baseline would need to match an enhancement. The baseline is the compute-optimal
  frontier of greedy accuracy over the ladder (the best accuracy any model of at most C training
  FLOPs reaches, interpolated in log C between ladder points). An accuracy above the frontier's
  top is never extrapolated: its CEG is reported as "more than" the ladder allows.
- lift: an enhancement's accuracy minus greedy's on the same model, paired over problems.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from oomlab.analysis.bootstrap import bootstrap_ci
from oomlab.analysis.curves import run_curves
from oomlab.errors import FitError
from oomlab.lab.summary import budget_text
from oomlab.store import Store

BASELINE = "greedy"
CHANCE_MARGIN = 0.1  # accuracies within this of chance are too little to price: no iso-accuracy target, CEG or bound
_PAST = 1e6  # log10 stand-in for a bootstrap replicate past either end of the ladder (an open interval end)


@dataclass(frozen=True)
class StrategyCurve:
    """One strategy's curve on one model: rungs k, test FLOPs per problem, per-problem accuracy."""

    key: str
    label: str
    oracle: bool
    ks: tuple[int, ...]
    test_flops: tuple[float, ...]
    per_problem: np.ndarray = field(repr=False)  # problems × rungs
    lo: tuple[float, ...] = ()
    hi: tuple[float, ...] = ()

    @property
    def accuracy(self) -> np.ndarray:
        return self.per_problem.mean(axis=0)


@dataclass(frozen=True)
class LabPoint:
    """One trained and swept model of the ladder."""

    name: str
    budget: float  # the ladder's nominal budget
    format: str
    seed: int
    train_flops: float  # counted exactly from the tokens processed
    n_params: int  # non-embedding
    run_id: str
    curves: dict[str, StrategyCurve]

    def curve(self, key: str) -> StrategyCurve:
        return self.curves[key]


def load_points(store: Store, entries: Sequence[dict]) -> list[LabPoint]:
    """LabPoints from ladder entries (name, budget, format, seed, train_flops, n_params, run_id)."""
    out = []
    for e in entries:
        curves = {}
        for c in run_curves(store, e["run_id"]):
            curves[c.key] = StrategyCurve(c.key, c.label, c.oracle, tuple(r.k for r in c.rungs),
                                          tuple(r.flops for r in c.rungs), np.asarray(c.per_problem, dtype=float),
                                          tuple(r.lo for r in c.rungs), tuple(r.hi for r in c.rungs))
        out.append(LabPoint(e["name"], float(e["budget"]), e["format"], int(e["seed"]), float(e["train_flops"]),
                            int(e["n_params"]), e["run_id"], curves))
    return out


# ------------------------------------------------------------------------ grouping by budget
@dataclass(frozen=True)
class Rung:
    """A model budget's per-problem outcomes at one strategy rung, one row per training seed."""

    budget: float
    train_flops: float  # mean over seeds
    by_seed: np.ndarray  # seeds × problems


def rungs_of(points: Sequence[LabPoint], fmt: str, key: str, rung: int = -1) -> list[Rung]:
    """The ladder's models of one format, grouped by budget: strategy `key` at rung index `rung`."""
    budgets = sorted({p.budget for p in points if p.format == fmt})
    out = []
    for b in budgets:
        mine = sorted((p for p in points if p.format == fmt and p.budget == b), key=lambda p: p.seed)
        rows = np.stack([p.curve(key).per_problem[:, rung] for p in mine])
        out.append(Rung(b, float(np.mean([p.train_flops for p in mine])), rows))
    return out


def _resample(rungs: Sequence[Rung], rng: np.random.Generator | None, problems: np.ndarray | None) -> np.ndarray:
    """Mean accuracy per budget: seeds resampled (when several) and problems resampled by `problems`."""
    means = []
    for r in rungs:
        rows = r.by_seed if rng is None or r.by_seed.shape[0] == 1 else r.by_seed[rng.integers(0, r.by_seed.shape[0],
                                                                                                 r.by_seed.shape[0])]
        cols = rows if problems is None else rows[:, problems]
        means.append(float(cols.mean()))
    return np.asarray(means)


# ------------------------------------------------------------------------ compute-equivalent gain
def frontier(train_flops: Sequence[float], accuracy: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The compute-optimal frontier: (log10 C sorted, best accuracy of any model with at most C)."""
    order = np.argsort(train_flops)
    x = np.log10(np.asarray(train_flops, dtype=float)[order])
    return x, np.maximum.accumulate(np.asarray(accuracy, dtype=float)[order])


def flops_to_reach(logc: np.ndarray, best: np.ndarray, target: float) -> tuple[float, str]:
    """log10 of the training FLOPs at which the frontier reaches `target`, and where that lies.

    "within": interpolated between two ladder points; "below": the cheapest model already
    reaches it (the value is then an upper bound, the cheapest budget); "beyond": no model reaches
    it (the value is a lower bound, the largest budget: never extrapolated).
    """
    if target <= best[0]:
        return float(logc[0]), "below"
    if target > best[-1]:
        return float(logc[-1]), "beyond"
    j = int(np.nonzero(best >= target)[0][0])
    frac = (target - best[j - 1]) / (best[j] - best[j - 1])
    return float(logc[j - 1] + frac * (logc[j] - logc[j - 1])), "within"


@dataclass(frozen=True)
class Gain:
    """A compute-equivalent gain: the baseline's training FLOPs to match, over the model's own."""

    what: str  # e.g. "majority@16 on cot-1e+12" or "cot vs direct at 1e+12"
    train_flops: float
    accuracy: float
    baseline_accuracy: float  # the baseline model's own accuracy (greedy, same budget)
    factor: float  # CEG; a bound when status is not "within"
    lo: float
    hi: float
    status: str  # within | below | beyond | chance
    test_cost: float = 1.0  # the enhancement's test-time FLOPs per problem over the baseline's

    @property
    def text(self) -> str:
        if self.status == "chance":
            return f"— (within {100 * CHANCE_MARGIN:.0f} points of chance: nothing to price)"
        if self.status == "beyond":
            return f"> {self.factor:.3g}× (past the ladder's largest budget)"
        if self.status == "below":
            return f"≤ {self.factor:.3g}× (at or below the ladder's smallest budget)"
        hi = "∞" if math.isinf(self.hi) else f"{self.hi:.3g}"
        lo = "0" if self.lo == 0 else f"{self.lo:.3g}"
        return f"{self.factor:.3g}× [{lo}, {hi}]"

    def as_dict(self) -> dict:
        return {"what": self.what, "train_flops": self.train_flops, "accuracy": self.accuracy,
                "baseline_accuracy": self.baseline_accuracy, "factor": self.factor, "lo": self.lo, "hi": self.hi,
                "status": self.status, "test_cost": self.test_cost, "text": self.text}


def compute_equivalent_gains(baseline: Sequence[Rung], treated: Sequence[Rung], labels: Sequence[str], *,
                             test_cost: Sequence[float] | None = None, n_boot: int = 1000, level: float = 0.95,
                             seed: int = 0, floor: float = 0.0) -> list[Gain]:
    """CEG of each treated rung against the baseline's frontier, with a paired bootstrap interval.

    Every replicate resamples the same problems for baseline and treated models (and seeds per
    budget where there are several), rebuilds the frontier and re-inverts it. Replicates that
    fall past the ladder count as infinite, so an upper end that needs them reads "∞". An
    accuracy at or below `floor` (chance plus a margin) has no capability to price: where the
    baseline's chance-level models wander, any "gain" would be noise read off the frontier.
    """
    if len(baseline) < 2:
        raise FitError("a compute-equivalent gain needs a baseline of at least two training budgets")
    n_problems = baseline[0].by_seed.shape[1]
    bx, ba = frontier([r.train_flops for r in baseline], _resample(baseline, None, None))
    point = _resample(treated, None, None)
    base_own = {r.budget: float(r.by_seed.mean()) for r in baseline}
    rng = np.random.default_rng(seed)
    boots = np.empty((n_boot, len(treated)))
    for b in range(n_boot):
        idx = rng.integers(0, n_problems, n_problems)
        x, a = frontier([r.train_flops for r in baseline], _resample(baseline, rng, idx))
        t = _resample(treated, rng, idx)
        for j, r in enumerate(treated):
            logc, status = flops_to_reach(x, a, t[j]) if t[j] > floor else (0.0, "below")
            censored = {"beyond": _PAST, "below": -_PAST}.get(status)
            boots[b, j] = censored if censored is not None else logc - math.log10(r.train_flops)
    alpha = (1 - level) / 2
    gains = []
    for j, r in enumerate(treated):
        logc, status = flops_to_reach(bx, ba, point[j])
        if point[j] <= floor:
            gains.append(Gain(labels[j], r.train_flops, float(point[j]), base_own.get(r.budget, math.nan), math.nan,
                              math.nan, math.nan, "chance", 1.0 if test_cost is None else float(test_cost[j])))
            continue
        lo, hi = np.quantile(boots[:, j], [alpha, 1 - alpha], method="inverted_cdf")  # a replicate, never a blend
        gains.append(Gain(labels[j], r.train_flops, float(point[j]), base_own.get(r.budget, math.nan),
                          10 ** (logc - math.log10(r.train_flops)), _factor(lo), _factor(hi), status,
                          1.0 if test_cost is None else float(test_cost[j])))
    return gains


def _factor(log_gain: float) -> float:
    """10^x, with the censored stand-ins mapped to the open ends 0 and ∞."""
    if log_gain >= _PAST / 2:
        return math.inf
    return 0.0 if log_gain <= -_PAST / 2 else float(10**log_gain)


# ------------------------------------------------------------------------ lifts and exchange rate
@dataclass(frozen=True)
class Lift:
    """An enhancement's accuracy minus greedy's on the same model and problems, paired."""

    model: str
    strategy: str
    k: int
    oracle: bool
    difference: float
    lo: float
    hi: float

    @property
    def excludes_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0

    def as_dict(self) -> dict:
        return {"model": self.model, "strategy": self.strategy, "k": self.k, "oracle": self.oracle,
                "difference": self.difference, "lo": self.lo, "hi": self.hi, "excludes_zero": self.excludes_zero}


def lift(point: LabPoint, key: str, rung: int = -1, n_boot: int = 2000, level: float = 0.95) -> Lift:
    """Paired percentile bootstrap over problems of (strategy at rung) − greedy."""
    c, g = point.curve(key), point.curve(BASELINE)
    diff = c.per_problem[:, rung] - g.per_problem[:, 0]
    mean, lo, hi = bootstrap_ci(diff, level=level, n_boot=n_boot, seed=0)
    return Lift(point.name, c.label, c.ks[rung], c.oracle, float(mean), float(lo), float(hi))


def iso_targets(chance: float, margin: float = 0.1) -> list[float]:
    """Target accuracies 0.05, 0.10, ... 0.95 at least `margin` above chance: a model guessing at chance
    wanders around it, and its noise would cross low targets at random rungs."""
    return [t for t in np.round(np.arange(0.05, 0.951, 0.05), 2) if t >= chance + margin - 1e-9]


def exchange(points: Sequence[LabPoint], fmt: str, key: str, *, n_boot: int = 1000, seed: int = 0,
             targets: Sequence[float] | None = None):
    """The exchange rate of one format's ladder along iso-accuracy lines of strategy `key`.

    One ModelRun per budget (seeds averaged). With one seed per budget, analysis.exchange_rate's own
    paired bootstrap over problems gives the interval; with several, each replicate here also
    resamples the seeds of every budget, and the slope's percentile interval replaces it.
    """
    from oomlab.analysis.exchange_rate import ModelRun, exchange_rate

    mine = [p for p in points if p.format == fmt]
    budgets = sorted({p.budget for p in mine})
    groups = [[p for p in mine if p.budget == b] for b in budgets]

    def models(rng: np.random.Generator | None, idx: np.ndarray | None) -> list:
        out = []
        for b, grp in zip(budgets, groups):
            pick = grp if rng is None or len(grp) == 1 else [grp[i] for i in rng.integers(0, len(grp), len(grp))]
            acc = np.mean([p.curve(key).per_problem for p in pick], axis=0)
            out.append(ModelRun(f"{fmt}-{budget_text(b)}", float(np.mean([p.train_flops for p in grp])),
                                np.mean([p.curve(key).test_flops for p in grp], axis=0),
                                acc if idx is None else acc[idx]))
        return out

    result = exchange_rate(models(None, None), targets, n_boot=n_boot, seed=seed)
    if all(len(g) == 1 for g in groups):
        return result
    rng = np.random.default_rng(seed)
    n_problems = groups[0][0].curve(key).per_problem.shape[0]
    slopes = []
    for _ in range(n_boot):
        try:
            slopes.append(exchange_rate(models(rng, rng.integers(0, n_problems, n_problems)), targets,
                                        n_boot=0).slope)
        except FitError:
            continue
    s = np.asarray([v for v in slopes if not math.isnan(v)])
    if s.size < 0.9 * n_boot:
        raise FitError(f"only {s.size} of {n_boot} bootstrap replicates gave an exchange rate")
    lo, hi = np.quantile(s, [(1 - result.level) / 2, (1 + result.level) / 2])
    from dataclasses import replace

    return replace(result, slope_interval=(float(lo), float(hi)),
                   interval_method="bootstrap over problems (paired) and over training seeds")


@dataclass(frozen=True)
class RateBound:
    """A lower bound on test-time OOMs per training OOM from two neighbouring models whose curves never meet.

    The cheaper model's best accuracy at its largest test budget stays below the dearer model's
    accuracy at its cheapest (95% intervals apart), so replacing the extra training takes more than
    the test-time compute the cheaper one was given: test OOMs per train OOM > log10(x_max / x_min')
    / log10(C' / C). Under Jones's parallel iso-accuracy lines every pair bounds the one common rate.
    """

    smaller: str
    larger: str
    train_ooms: float
    test_ooms: float  # log10(the smaller's largest test FLOPs / the larger's smallest)

    @property
    def bound(self) -> float:
        return self.test_ooms / self.train_ooms

    def as_dict(self) -> dict:
        return {"smaller": self.smaller, "larger": self.larger, "train_ooms": self.train_ooms,
                "test_ooms": self.test_ooms, "bound": self.bound}


def rate_bounds(points: Sequence[LabPoint], fmt: str, key: str, floor: float = 0.0) -> list[RateBound]:
    """Lower bounds on the exchange rate from neighbouring budgets whose curves do not overlap.

    One training seed per budget (the lowest); pairs where the larger model is at or below `floor`
    (chance plus a margin) prove nothing and are skipped, and so are pairs that do overlap.
    """
    mine = sorted((p for p in points if p.format == fmt and p.seed == min(q.seed for q in points)),
                  key=lambda p: p.train_flops)
    out = []
    for a, b in zip(mine, mine[1:]):
        ca, cb = a.curve(key), b.curve(key)
        best = int(np.argmax(ca.accuracy))
        if cb.accuracy[0] <= floor or not ca.hi[best] < cb.lo[0]:
            continue
        out.append(RateBound(a.name, b.name, math.log10(b.train_flops / a.train_flops),
                             math.log10(ca.test_flops[-1] / cb.test_flops[0])))
    return out

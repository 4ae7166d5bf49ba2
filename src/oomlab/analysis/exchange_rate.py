"""The train↔test compute exchange rate: iso-accuracy curves and their slope.

Given several models of known training compute, each with a curve of accuracy vs test-time
FLOPs, an iso-accuracy curve joins, for one target accuracy, the test FLOPs each model needs
to reach it. Jones 2021 ("Scaling Scaling Laws with Board Games", arXiv 2104.03113, §IV-C)
found these curves to be straight and parallel in log-log axes on Hex, with slope about
-log10(15): each extra 10× of train-time compute saves about 15× of test-time compute.

The slope here is the least-squares slope of log10(test FLOPs) on log10(train FLOPs), with
one intercept per target and a common slope (parallel lines, as in Jones). Its interval is
a bootstrap over problems when per-problem data are given (targets share models, so their
points are not independent), else the ordinary least-squares t interval, which treats them
as independent and is then too narrow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy import stats

from oomlab.errors import ConfigError, FitError

__all__ = [
    "ExchangeRate",
    "ModelRun",
    "exchange_rate",
    "plot_iso_accuracy",
    "plot_two_panel",
    "needed_test_flops",
]


@dataclass(frozen=True, eq=False)
class ModelRun:
    """One model: its training FLOPs and its test-time curve (accuracy per rung of test FLOPs).

    ``accuracy`` is the mean per rung, or a (problems, rungs) matrix for bootstrap intervals.
    """

    name: str
    train_flops: float
    test_flops: Sequence[float]
    accuracy: Any

    def __post_init__(self) -> None:
        object.__setattr__(self, "train_flops", float(self.train_flops))
        x = np.asarray(self.test_flops, dtype=float)
        a = np.asarray(self.accuracy, dtype=float)
        if not self.train_flops > 0:
            raise ConfigError(f"model '{self.name}': train_flops must be positive")
        if x.ndim != 1 or np.any(x <= 0) or np.any(np.diff(x) <= 0):
            raise ConfigError(f"model '{self.name}': test_flops must be positive and increasing")
        if a.ndim not in (1, 2) or a.shape[-1] != x.size:
            raise ConfigError(f"model '{self.name}': accuracy must be (rungs,) or (problems, rungs)")
        if not np.all(np.isfinite(a)) or np.any(a < 0) or np.any(a > 1):
            raise ConfigError(f"model '{self.name}': accuracy must lie in [0, 1]")

    @property
    def mean_curve(self) -> np.ndarray:
        a = np.asarray(self.accuracy, dtype=float)
        return a.mean(axis=0) if a.ndim == 2 else a


def needed_test_flops(test_flops: Any, accuracy: Any, target: float) -> float:
    """Test FLOPs where the curve first reaches target, interpolating accuracy in log10 FLOPs.

    NaN when it is never reached, or already reached at the cheapest rung (the need is then
    only known to be at most that rung: censored, so not a point to fit).
    """
    x = np.log10(np.asarray(test_flops, dtype=float))
    a = np.asarray(accuracy, dtype=float)
    above = np.nonzero(a >= target)[0]
    if above.size == 0 or above[0] == 0:
        return math.nan
    j = int(above[0])
    frac = (target - a[j - 1]) / (a[j] - a[j - 1])
    return float(10.0 ** (x[j - 1] + frac * (x[j] - x[j - 1])))


def _points(curves: list[np.ndarray], models: Sequence[ModelRun], targets: np.ndarray) -> np.ndarray:
    """(targets, models) array of log10 test FLOPs needed, NaN where not a point."""
    return np.array(
        [[math.log10(v) if not math.isnan(v := needed_test_flops(m.test_flops, c, t)) else math.nan
          for m, c in zip(models, curves)] for t in targets]
    )


def _pooled_slope(logtrain: np.ndarray, logtest: np.ndarray) -> tuple[float, float, int, int]:
    """Common slope with one intercept per target: (slope, se, n_points, dof)."""
    sxx = sxy = 0.0
    n = groups = 0
    rows = []
    for y in logtest:
        ok = ~np.isnan(y)
        if ok.sum() < 2:
            continue
        xc, yc = logtrain[ok] - logtrain[ok].mean(), y[ok] - y[ok].mean()
        sxx, sxy = sxx + float(xc @ xc), sxy + float(xc @ yc)
        n, groups = n + int(ok.sum()), groups + 1
        rows.append((xc, yc))
    if groups == 0 or sxx == 0:
        return math.nan, math.nan, n, 0
    slope = sxy / sxx
    resid = [yc - slope * xc for xc, yc in rows]
    dof = n - groups - 1
    se = math.sqrt(sum(float(r @ r) for r in resid) / dof / sxx) if dof > 0 else math.nan
    return slope, se, n, dof


@dataclass(frozen=True)
class ExchangeRate:
    """Iso-accuracy points and the train↔test slope.

    ``slope`` is d log10(test FLOPs) / d log10(train FLOPs) along an iso-accuracy curve
    (negative when training compute substitutes for test compute);
    ``test_ooms_per_train_oom`` = -slope and ``test_factor_per_10x_train`` = 10^(-slope):
    Jones 2021 reports about 15 on Hex.
    """

    targets: tuple[float, ...]
    models: tuple[str, ...]
    train_flops: tuple[float, ...]
    test_flops_needed: tuple[tuple[float, ...], ...]  # [target][model], NaN where not a point
    per_target_slopes: tuple[float, ...]
    slope: float
    slope_interval: tuple[float, float]
    level: float
    interval_method: str
    n_points: int
    notes: tuple[str, ...] = field(default=())

    @property
    def test_ooms_per_train_oom(self) -> float:
        return -self.slope

    @property
    def test_factor_per_10x_train(self) -> float:
        return 10.0 ** (-self.slope)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN kept as NaN; the report writer decides how to print it)."""
        return {
            "targets": list(self.targets),
            "models": list(self.models),
            "train_flops": list(self.train_flops),
            "test_flops_needed": [list(r) for r in self.test_flops_needed],
            "per_target_slopes": list(self.per_target_slopes),
            "slope": self.slope,
            "slope_interval": list(self.slope_interval),
            "level": self.level,
            "interval_method": self.interval_method,
            "test_ooms_per_train_oom": self.test_ooms_per_train_oom,
            "test_factor_per_10x_train": self.test_factor_per_10x_train,
            "n_points": self.n_points,
            "notes": list(self.notes),
        }


def exchange_rate(
    models: Sequence[ModelRun],
    targets: Sequence[float] | None = None,
    *,
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> ExchangeRate:
    """Iso-accuracy curves over models of known training compute, and their common slope.

    Default targets: 0.05, 0.10, ..., 0.95, keeping those at least two models reach
    (past their cheapest rung). Needs at least two models of different training compute.
    """
    if len(models) < 2 or len({m.train_flops for m in models}) < 2:
        raise FitError("an exchange rate needs at least two models of different training compute")
    if not 0 < level < 1:
        raise ConfigError(f"level must lie strictly between 0 and 1, got {level}")
    logtrain = np.log10([m.train_flops for m in models])
    curves = [m.mean_curve for m in models]
    grid = np.asarray(targets if targets is not None else np.round(np.arange(0.05, 0.951, 0.05), 2), dtype=float)
    if np.any((grid <= 0) | (grid >= 1)):
        raise ConfigError("target accuracies must lie strictly between 0 and 1")
    pts = _points(curves, models, grid)
    keep = (~np.isnan(pts)).sum(axis=1) >= 2
    if not keep.any():
        raise FitError(
            "no target accuracy is reached by two or more models past their cheapest rung; "
            "the curves do not overlap enough to compare"
        )
    grid, pts = grid[keep], pts[keep]
    slope, se, n, dof = _pooled_slope(logtrain, pts)
    per_target = tuple(_pooled_slope(logtrain, row[None])[0] for row in pts)
    notes: list[str] = []

    matrices = [np.asarray(m.accuracy, dtype=float) for m in models]
    if n_boot and all(a.ndim == 2 for a in matrices):
        rng = np.random.default_rng(seed)
        sizes = {a.shape[0] for a in matrices}
        paired = len(sizes) == 1  # same problem set: resample the same problems for every model
        n_rows = matrices[0].shape[0]
        boots = []
        for _ in range(n_boot):
            if paired:
                idx = rng.integers(0, n_rows, n_rows)
                bc = [a[idx].mean(axis=0) for a in matrices]
            else:
                bc = [a[rng.integers(0, a.shape[0], a.shape[0])].mean(axis=0) for a in matrices]
            boots.append(_pooled_slope(logtrain, _points(bc, models, grid))[0])
        b = np.asarray(boots)
        b = b[~np.isnan(b)]
        if b.size < 0.9 * n_boot:
            notes.append(f"{n_boot - b.size} of {n_boot} bootstrap replicates had too few points")
        lo, hi = np.quantile(b, [(1 - level) / 2, (1 + level) / 2])
        interval, method = (float(lo), float(hi)), "bootstrap over problems" + (" (paired)" if paired else "")
    elif dof > 0:
        half = stats.t.ppf((1 + level) / 2, dof) * se
        interval, method = (slope - half, slope + half), f"OLS t interval ({dof} dof; points treated as independent)"
    else:
        interval, method = (math.nan, math.nan), "none (too few points for an interval)"
        notes.append("give per-problem accuracy matrices, or more models, for an interval")

    return ExchangeRate(
        targets=tuple(float(t) for t in grid),
        models=tuple(m.name for m in models),
        train_flops=tuple(float(m.train_flops) for m in models),
        test_flops_needed=tuple(tuple(float(10.0**v) if not np.isnan(v) else math.nan for v in row) for row in pts),
        per_target_slopes=per_target,
        slope=float(slope),
        slope_interval=interval,
        level=level,
        interval_method=method,
        n_points=n,
        notes=tuple(notes),
    )


# ----------------------------------------------------------------------------- figures
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_two_panel(models: Sequence[ModelRun], path: str, *, test_levels: Sequence[float] | None = None,
                   title: str | None = None) -> str:
    """The classic two-panel figure (Jones 2021, Fig. 1 style), both panels log-x.

    Left: accuracy vs train-time compute, one line per fixed test-time budget.
    Right: accuracy vs test-time compute, one line per model.
    """
    plt = _pyplot()
    order = sorted(models, key=lambda m: m.train_flops)
    cmap = plt.get_cmap("viridis")
    colours = [cmap(i / max(1, len(order) - 1)) for i in range(len(order))]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    if test_levels is None:
        lo = min(np.log10(m.test_flops[0]) for m in order)
        hi = max(np.log10(m.test_flops[-1]) for m in order)
        test_levels = 10.0 ** np.unique(np.round(np.linspace(lo, hi, 4)))
    tcmap = plt.get_cmap("plasma")
    for i, level in enumerate(test_levels):
        xs, ys = [], []
        for m in order:
            lx = np.log10(np.asarray(m.test_flops, dtype=float))
            if lx[0] - 1e-9 <= math.log10(level) <= lx[-1] + 1e-9:
                xs.append(m.train_flops)
                ys.append(float(np.interp(math.log10(level), lx, m.mean_curve)))
        if xs:
            left.plot(xs, ys, "o-", color=tcmap(i / max(1, len(test_levels) - 0.5)),
                      label=f"test compute {level:.1e} FLOPs")
    left.set_xscale("log")
    left.set_xlabel("train-time compute (FLOPs)")
    left.set_ylabel("accuracy")
    left.set_title("accuracy vs train-time compute")
    left.legend(fontsize=8, loc="best")
    for m, c in zip(order, colours):
        right.plot(m.test_flops, m.mean_curve, "o-", color=c, label=f"{m.name} (train {m.train_flops:.1e})")
    right.set_xscale("log")
    right.set_xlabel("test-time compute (FLOPs per problem)")
    right.set_title("accuracy vs test-time compute")
    right.legend(fontsize=8, loc="best")
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        ax.set_ylim(-0.02, 1.02)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_iso_accuracy(result: ExchangeRate, path: str, *, title: str | None = None, max_lines: int = 8) -> str:
    """Iso-accuracy curves in the (train FLOPs, test FLOPs) plane, log-log, with the common slope.

    At most ``max_lines`` targets are drawn (evenly spaced among those fitted).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    cmap = plt.get_cmap("coolwarm")
    train = np.asarray(result.train_flops)
    lt = np.log10(train)
    shown = np.unique(np.round(np.linspace(0, len(result.targets) - 1, min(max_lines, len(result.targets)))))
    for i in shown.astype(int):
        target, row = result.targets[i], result.test_flops_needed[i]
        y = np.asarray(row)
        ok = ~np.isnan(y)
        colour = cmap(i / max(1, len(result.targets) - 1))
        ax.plot(train[ok], y[ok], "o", color=colour, label=f"{100 * target:.0f}% accuracy")
        if ok.sum() >= 2 and not math.isnan(result.slope):
            icpt = np.mean(np.log10(y[ok])) - result.slope * np.mean(lt[ok])
            xs = np.linspace(lt[ok].min(), lt[ok].max(), 2)
            ax.plot(10.0**xs, 10.0 ** (icpt + result.slope * xs), "-", color=colour, alpha=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("train-time compute (FLOPs)")
    ax.set_ylabel("test-time compute to reach target (FLOPs per problem)")
    lo, hi = result.slope_interval
    ax.set_title(title or (f"slope {result.slope:.2f} [{lo:.2f}, {hi:.2f}]: 10× train ≈ "
                           f"{result.test_factor_per_10x_train:.1f}× test"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="iso-accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

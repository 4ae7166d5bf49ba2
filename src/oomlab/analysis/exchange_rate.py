"""The train↔test compute exchange rate: iso-accuracy curves and their slope.

Given several models of known training compute, each with a curve of accuracy vs test-time
FLOPs, an iso-accuracy curve joins, for one target accuracy, the test FLOPs each model needs
to reach it. Jones 2021 ("Scaling Scaling Laws with Board Games", arXiv 2104.03113, §IV-C)
found these curves to be straight and parallel in log-log axes on Hex, with slope about
-log10(15): each extra 10× of train-time compute saves about 15× of test-time compute.

The slope here is the least-squares slope of log10(test FLOPs) on log10(train FLOPs), with
one intercept per target and a common slope (parallel lines, as in Jones). Its interval is
a bootstrap over problems when per-problem data are given (targets share models, so their
points are not independent; bias-corrected normal, see `_bias_corrected_normal`), else the
ordinary least-squares t interval, which treats them as independent and is then too narrow.

Units: training compute is always FLOPs; test-time compute is FLOPs per problem, or tokens per
problem for a run whose model facts are unknown. The two are never mixed in one slope (tokens
are 2N FLOPs each, and N differs between the models being compared, so mixing them bends the
iso-accuracy lines): every ModelRun carries its unit and `exchange_rate` refuses a mixture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy import stats

from oomlab.errors import ConfigError, FitError

__all__ = [
    "COMPUTE_UNITS",
    "ExchangeRate",
    "ModelRun",
    "UnitMismatchError",
    "exchange_rate",
    "needed_test_flops",
]


COMPUTE_UNITS = ("FLOPs", "tokens")


class UnitMismatchError(ConfigError):
    """Runs whose test-time compute is counted in different units (FLOPs for some, tokens for others)."""


def check_unit(unit: str) -> str:
    """'FLOPs' or 'tokens', whatever the case it was typed in."""
    for u in COMPUTE_UNITS:
        if unit.strip().lower() == u.lower():
            return u
    raise ConfigError(f"unknown compute unit '{unit}'; valid units: flops, tokens")


@dataclass(frozen=True, eq=False)
class ModelRun:
    """One model: its training FLOPs and its test-time curve (accuracy per rung of test compute).

    ``accuracy`` is the mean per rung, or a (problems, rungs) matrix for bootstrap intervals.
    ``test_flops`` holds the test-time compute per rung in ``unit`` (FLOPs, or tokens when the
    model's facts are unknown).
    """

    name: str
    train_flops: float
    test_flops: Sequence[float]
    accuracy: Any
    unit: str = "FLOPs"

    def __post_init__(self) -> None:
        object.__setattr__(self, "train_flops", float(self.train_flops))
        object.__setattr__(self, "unit", check_unit(self.unit))
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
    v = _needed_log10(x, np.asarray(accuracy, dtype=float), np.array([float(target)]))[0]
    return math.nan if math.isnan(v) else float(10.0**v)


def _needed_log10(logx: np.ndarray, a: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """log10 of `needed_test_flops` for every target at once (NaN where not a point)."""
    above = a[None, :] >= targets[:, None]
    first = np.argmax(above, axis=1)
    ok = above.any(axis=1) & (first > 0)
    j = np.where(ok, first, 1)
    lo_a, hi_a = a[j - 1], a[j]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (targets - lo_a) / (hi_a - lo_a)
    out = logx[j - 1] + frac * (logx[j] - logx[j - 1])
    return np.where(ok, out, np.nan)


def _points(curves: list[np.ndarray], models: Sequence[ModelRun], targets: np.ndarray) -> np.ndarray:
    """(targets, models) array of log10 test FLOPs needed, NaN where not a point."""
    return np.column_stack([_needed_log10(np.log10(np.asarray(m.test_flops, dtype=float)), np.asarray(c, dtype=float),
                                          targets) for m, c in zip(models, curves)])


def _bias_corrected_normal(estimate: float, boots: np.ndarray, level: float) -> tuple[float, float]:
    """estimate - bias ± z · sd, bias and sd from the bootstrap replicates (Efron & Tibshirani 1993, §10.6).

    Why not the percentile interval: the slope goes through first crossings of noisy curves, a ratio of
    noisy differences, which biases it (about a third of its sd with 200 problems of 0/1 outcomes per
    rung); the percentile interval then covered 0.91 of the time at nominal 0.95 (see
    benchmarks/interval_coverage.py), the bias-corrected one 0.93-0.96.
    """
    if boots.size < 2:
        return (math.nan, math.nan)
    sd = float(boots.std(ddof=1))
    centre = 2.0 * estimate - float(boots.mean())
    half = float(stats.norm.ppf((1 + level) / 2)) * sd
    return (centre - half, centre + half)


def _pooled_slope(logtrain: np.ndarray, logtest: np.ndarray) -> tuple[float, float, int, int]:
    """Common slope with one intercept per target: (slope, se, n_points, dof).

    Vectorised over targets (rows of ``logtest``, NaN where a model has no point); rows with fewer
    than two points are left out. The bootstrap calls this once per replicate.
    """
    y = np.atleast_2d(np.asarray(logtest, dtype=float))
    ok = ~np.isnan(y)
    ok &= (ok.sum(axis=1) >= 2)[:, None]
    counts = ok.sum(axis=1)
    groups = int((counts > 0).sum())
    n = int(counts.sum())
    if groups == 0:
        return math.nan, math.nan, n, 0
    rows = counts > 0
    ok, y, counts = ok[rows], np.where(ok[rows], y[rows], 0.0), counts[rows]
    x = np.where(ok, logtrain[None, :], 0.0)
    xc = np.where(ok, x - (x.sum(axis=1) / counts)[:, None], 0.0)
    yc = np.where(ok, y - (y.sum(axis=1) / counts)[:, None], 0.0)
    sxx, sxy = float((xc * xc).sum()), float((xc * yc).sum())
    if sxx == 0:
        return math.nan, math.nan, n, 0
    slope = sxy / sxx
    dof = n - groups - 1
    resid = yc - slope * xc
    se = math.sqrt(float((resid * resid).sum()) / dof / sxx) if dof > 0 else math.nan
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
    test_unit: str = "FLOPs"  # what test_flops_needed counts; training compute is always FLOPs

    @property
    def rate_text(self) -> str:
        """'10× training FLOPs ≈ 15.2× test-time FLOPs': the rate with both units named."""
        return f"10× training FLOPs ≈ {self.test_factor_per_10x_train:.3g}× test-time {self.test_unit}"

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
            "train_compute_unit": "FLOPs",
            "test_compute_unit": self.test_unit,
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
    units = {m.unit for m in models}
    if len(units) > 1:
        by_unit = "; ".join(f"{u}: {', '.join(m.name for m in models if m.unit == u)}" for u in COMPUTE_UNITS
                            if u in units)
        raise UnitMismatchError(f"test-time compute is in different units across models ({by_unit}); "
                                "one slope cannot mix them: count every model in tokens")
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
        interval = _bias_corrected_normal(slope, b, level)
        method = "bootstrap over problems" + (" (paired)" if paired else "") + ", bias-corrected normal"
        bias = float(b.mean() - slope)
        if abs(bias) > 0.25 * float(b.std(ddof=1)):
            notes.append(f"bootstrap bias {bias:+.3g} in the slope: the interval is centred on {slope - bias:.3g}")
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
        test_unit=models[0].unit,
    )

"""Fitting a scaling law to one curve: bootstrap-over-problems intervals, extrapolation and refusals.

Three laws, one machinery:

* ``logistic``  — accuracy vs log10 compute, a sigmoid with floor and ceiling:
  ``acc(C) = floor + (ceiling - floor) / (1 + exp(-slope * (log10 C - midpoint)))``.
* ``coverage``  — coverage (pass@k) vs samples k, the exponentiated power law of
  Brown et al. 2024 ("Large Language Monkeys", arXiv 2407.21787, §3):
  ``c(k) = exp(a * k**b)`` (a < 0, b < 0 for a rising curve).
* ``error-power-law`` — error vs compute, a power law:
  ``1 - acc(C) = error_at_ref * (C / ref_compute) ** (-alpha)``.

Every law is fitted by least squares on the *mean curve* (mean over problems, on the
accuracy scale). Intervals come from the bootstrap over problems: resample the rows of
the per-problem matrix with replacement, refit, take percentiles. The same bootstrap
refits give the bands of ``predict_interval`` and the interval of ``compute_for``;
they are intervals for the population mean curve (the uncertainty from which
problems were drawn), not for a single new problem.

Those bands assume the law holds: they know nothing of a law that is merely close on the
measured rungs and wrong beyond them. So every bootstrapped fit also carries a check the data
can fail (:class:`HoldoutCheck`): refit without the last rung(s), predict them, and see whether
the measured mean falls in the predicted band. A fit that fails it marks its extrapolations
unreliable; one that cannot run it (too few rungs) marks them unchecked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from oomlab.analysis.scaling_laws import FIT_LAWS, Law, make_law
from oomlab.errors import ConfigError, FitError

__all__ = [
    "FIT_LAWS",
    "CurveFit",
    "HoldoutCheck",
    "fit_coverage",
    "fit_curve",
    "fit_error_power_law",
    "fit_logistic",
    "fit_mean_curve",
]


# ----------------------------------------------------------------------------- result
def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of finite-or-infinite values, NaNs (failed refits) dropped."""
    v = np.sort(values[~np.isnan(values)])
    if v.size == 0:
        return (math.nan, math.nan)
    q = np.quantile(v, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return (float(q[0]), float(q[1]))


@dataclass(frozen=True)
class HoldoutCheck:
    """Fit without the last ``len(held_out)`` rungs, predict them, compare with what was measured.

    ``band`` is where the measured mean should fall if the law holds: the prediction, widened by
    the bootstrap spread of (prediction - measurement), both taken from the same resampled
    problems so that their correlation counts (a basic-bootstrap band). ``passed`` is True when
    every held-out measurement is inside; None when the check could not run (``refused`` says why).
    """

    held_out: tuple[float, ...] = ()  # compute of the held-out rungs
    ooms_ahead: tuple[float, ...] = ()  # how far past the rungs the reduced fit saw
    measured: tuple[float, ...] = ()
    predicted: tuple[float, ...] = ()
    band: tuple[tuple[float, float], ...] = ()
    level: float = 0.95
    passed: bool | None = None
    refused: str | None = None

    @property
    def status(self) -> str:
        """'passed', 'failed' or 'not possible'."""
        return "not possible" if self.passed is None else "passed" if self.passed else "failed"

    @property
    def extrapolation(self) -> str:
        """What an extrapolation from this fit is: 'checked', 'unreliable' or 'unchecked'."""
        return {"passed": "checked", "failed": "unreliable"}.get(self.status, "unchecked")

    def summary(self) -> str:
        """One line: which rung was held out, what was measured and predicted, the verdict."""
        if self.passed is None:
            return f"held-out check not possible: {self.refused}"
        parts = [f"{100 * m:.1f}% measured vs {100 * p:.1f}% predicted [{100 * lo:.1f}, {100 * hi:.1f}] "
                 f"at {x:.3g} ({a:.2g} OOMs ahead)"
                 for x, a, m, p, (lo, hi) in zip(self.held_out, self.ooms_ahead, self.measured, self.predicted,
                                                 self.band)]
        verdict = "inside the band: passed" if self.passed else "outside the band: FAILED, extrapolation unreliable"
        return f"held-out last rung{'s' if len(parts) > 1 else ''}: " + "; ".join(parts) + f" — {verdict}"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "passed": self.passed, "refused": self.refused, "level": self.level,
                "held_out_compute": list(self.held_out), "ooms_ahead": list(self.ooms_ahead),
                "measured": list(self.measured), "predicted": list(self.predicted),
                "band": [list(b) for b in self.band], "extrapolation": self.extrapolation,
                "summary": self.summary()}


ASSUMPTION = "assumes the {law} curve holds past the measured rungs"


@dataclass(frozen=True, eq=False)
class CurveFit:
    """A fitted scaling curve: parameters, bootstrap intervals, goodness of fit.

    ``r2`` and ``rmse`` are measured on the mean curve (mean over problems), on the
    accuracy scale, at the rungs that were fitted.
    """

    law: str
    formula: str
    params: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    level: float
    r2: float
    rmse: float
    n_problems: int
    n_boot: int
    n_boot_failed: int
    compute: tuple[float, ...]
    mean_curve: tuple[float, ...]
    mean_curve_se: tuple[float, ...]
    fixed: dict[str, float] = field(default_factory=dict)
    max_extrapolation_ooms: float = 2.0
    notes: tuple[str, ...] = ()
    gof_on: str = "mean curve over problems, accuracy scale"
    holdout: HoldoutCheck = field(default_factory=lambda: HoldoutCheck(refused="no bootstrap refits"))
    _law: Law = field(default=None, repr=False)  # type: ignore[assignment]
    _theta: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    _boot: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]

    def predict(self, x: Any) -> Any:
        """The fitted accuracy (coverage for ``coverage``) at compute x."""
        arr = np.asarray(x, dtype=float)
        out = self._law.predict(np.atleast_1d(arr), self._theta)
        return float(out[0]) if arr.ndim == 0 else out

    def ooms_outside(self, x: Any) -> np.ndarray:
        """How many orders of magnitude x lies outside the fitted rungs (0 inside)."""
        u = np.log10(np.asarray(x, dtype=float))
        lo, hi = math.log10(self.compute[0]), math.log10(self.compute[-1])
        return np.maximum(0.0, np.maximum(u - hi, lo - u))

    def extrapolation_note(self, x: float) -> str | None:
        """What a figure at compute x rests on: None inside the rungs, else the assumption and the check."""
        far = float(self.ooms_outside(x))
        if far == 0.0:
            return None
        note = f"extrapolated {far:.2g} OOMs outside the measured rungs: assumes the {self.law} curve holds there"
        if self.holdout.passed is False:
            return note + "; UNRELIABLE: the held-out rung fell outside its predicted band"
        if self.holdout.passed is None:
            return note + f"; unchecked ({self.holdout.refused})"
        return note + "; held-out rung check passed"

    def interval(self, name: str, level: float) -> tuple[float, float]:
        """A parameter's bootstrap percentile interval at another level than the fit's."""
        level = _check_level(level)
        if name not in self.params:
            raise ConfigError(f"unknown parameter '{name}'; this fit has {', '.join(self.params)}")
        self._need_boot(f"interval for {name}")
        return _interval(self._boot[:, list(self.params).index(name)], level)

    def _need_boot(self, what: str) -> None:
        if self._boot is None or self.n_boot - self.n_boot_failed < 2:
            raise FitError(
                f"no {what}: this fit has no bootstrap refits (n_boot={self.n_boot}); "
                "fit the per-problem matrix with n_boot > 0"
            )

    def predict_interval(self, x: Any, level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Bootstrap percentile band (lo, hi) of the mean curve at x; refuses past the limit.

        Past the rungs the band assumes the law holds there (see ``holdout`` for the check)."""
        level = self.level if level is None else _check_level(level)
        self._need_boot("prediction interval")
        xs = np.atleast_1d(np.asarray(x, dtype=float))
        far = self.ooms_outside(xs)
        if np.any(far > self.max_extrapolation_ooms):
            worst = float(xs[np.argmax(far)])
            raise FitError(
                f"{self.law} fit: compute {worst:.3g} is {far.max():.1f} OOMs outside the "
                f"measured rungs [{self.compute[0]:.3g}, {self.compute[-1]:.3g}]; the fit does "
                f"not support extrapolation past {self.max_extrapolation_ooms:g} OOMs"
            )
        preds = self._law.predict(xs, self._boot)
        preds = preds[~np.isnan(preds).any(axis=1)]
        lo, hi = np.quantile(preds, [(1 - level) / 2, (1 + level) / 2], axis=0)
        return lo, hi

    def compute_for(self, target: float, level: float | None = None) -> tuple[float, float, float]:
        """Compute needed to reach target accuracy: (value, lo, hi), or FitError saying why not.

        Refuses a target at or above the fitted ceiling, one below the floor, a value more
        than ``max_extrapolation_ooms`` outside the rungs, and an unbounded interval. A fit
        without bootstrap (``fit_mean_curve``) returns NaN for lo and hi.
        """
        level = self.level if level is None else _check_level(level)
        if not 0.0 < target < 1.0:
            raise ConfigError(f"target accuracy must lie strictly between 0 and 1, got {target}")
        pct = f"{100 * target:.1f}%"
        if not self._law.rises(self._theta):
            raise FitError(
                f"{self.law} fit: the fitted curve does not rise with compute, so no budget "
                f"'reaches' {pct}; check the data (params: {self.params})"
            )
        sup = float(self._law.supremum(self._theta)[0])
        if target >= sup:
            ci = self.intervals.get("ceiling")
            extra = f" (interval {100 * ci[0]:.1f}%–{100 * ci[1]:.1f}%)" if ci else ""
            raise FitError(
                f"{self.law} fit: target {pct} is at or above the fitted ceiling "
                f"{100 * sup:.1f}%{extra}; no amount of compute reaches it on this curve"
            )
        value = float(self._law.inverse(target, self._theta)[0])
        if value == 0.0:
            raise FitError(
                f"{self.law} fit: target {pct} is below the fitted floor; every budget reaches it"
            )
        far = float(self.ooms_outside(value))
        if far > self.max_extrapolation_ooms:
            raise FitError(
                f"{self.law} fit: reaching {pct} needs about 10^{math.log10(value):.1f}, "
                f"{far:.1f} OOMs outside the measured rungs; the fit does not support "
                f"extrapolation past {self.max_extrapolation_ooms:g} OOMs"
            )
        if self._boot is None:
            return value, math.nan, math.nan  # a mean-curve-only fit has no interval
        xs = self._law.inverse(target, self._boot)
        xs = xs[~np.isnan(xs)]
        unreachable = float(np.mean(np.isinf(xs)))
        if unreachable > (1 - level) / 2:
            raise FitError(
                f"{self.law} fit: the {100 * level:g}% interval for the compute to reach {pct} "
                f"is unbounded: in {100 * unreachable:.0f}% of bootstrap refits the curve never "
                "reaches it (ceiling too close to the target)"
            )
        lo, hi = _interval(xs, level)
        return value, lo, hi

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no bootstrap draws)."""
        return {
            "law": self.law,
            "formula": self.formula,
            "params": dict(self.params),
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "fixed": dict(self.fixed),
            "level": self.level,
            "goodness_of_fit": {"r2": self.r2, "rmse": self.rmse, "on": self.gof_on},
            "n_problems": self.n_problems,
            "n_boot": self.n_boot,
            "n_boot_failed": self.n_boot_failed,
            "compute": list(self.compute),
            "mean_curve": list(self.mean_curve),
            "mean_curve_se": list(self.mean_curve_se),
            "max_extrapolation_ooms": self.max_extrapolation_ooms,
            "notes": list(self.notes),
            "holdout_check": self.holdout.to_dict(),
            "extrapolation": self.holdout.extrapolation,
            "extrapolation_assumes": ASSUMPTION.format(law=self.law),
        }


# ----------------------------------------------------------------------------- fitting
def _check_level(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ConfigError(f"level must lie strictly between 0 and 1, got {level}")
    return float(level)


def _validate(compute: Any, values: Any, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(compute, dtype=float)
    v = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ConfigError(f"compute must be one value per rung, got shape {x.shape}")
    if v.ndim != ndim or v.shape[-1] != x.size:
        want = "(problems, rungs)" if ndim == 2 else "(rungs,)"
        raise ConfigError(f"values must have shape {want} with {x.size} rungs, got {v.shape}")
    if not np.all(np.isfinite(x)) or np.any(x <= 0) or np.any(np.diff(x) <= 0):
        raise ConfigError("compute must be positive and strictly increasing across rungs")
    if not np.all(np.isfinite(v)) or np.any(v < 0) or np.any(v > 1):
        raise ConfigError("accuracies must be finite and lie in [0, 1]")
    return x, v


def _point_fit(law: Law, x: np.ndarray, y: np.ndarray, min_rungs: int, flat_tolerance: float):
    p = len(law.param_names)
    if x.size < min_rungs:
        hint = " (fix the floor, e.g. floor=0.0, to need one fewer)" if law.name == "logistic" and p == 4 else ""
        raise FitError(
            f"too few rungs for a {law.name} fit: {x.size} given, {p} parameters need at "
            f"least {min_rungs}{hint}"
        )
    if float(np.ptp(y)) < flat_tolerance:
        raise FitError(
            f"the curve is flat: accuracy spans {100 * np.ptp(y):.2f} points across "
            f"{math.log10(x[-1] / x[0]):.1f} OOMs of compute (tolerance "
            f"{100 * flat_tolerance:g} points); there is no trend to fit"
        )
    theta = law.fit_one(x, y, law.initial(x, y))
    if np.isnan(theta).any():
        raise FitError(f"the {law.name} least-squares fit did not converge on this curve")
    return theta


def _assemble(law, x, y, theta, boot, boot_se, n_problems, n_boot, level, max_ooms, notes, holdout=None):
    resid = y - law.predict(x, theta)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else math.nan
    failed = 0 if boot is None else int(np.isnan(boot).any(axis=1).sum())
    intervals = {}
    if boot is not None and n_boot - failed >= 2:
        intervals = {name: _interval(boot[:, i], level) for i, name in enumerate(law.param_names)}
    if boot is not None and failed > 0.1 * n_boot:
        notes = (*notes, f"{failed} of {n_boot} bootstrap refits failed; intervals use the rest")
    return CurveFit(
        law=law.name,
        formula=law.formula,
        params={n: float(v) for n, v in zip(law.param_names, theta)},
        intervals=intervals,
        level=level,
        r2=r2,
        rmse=float(np.sqrt(np.mean(resid**2))),
        n_problems=n_problems,
        n_boot=n_boot,
        n_boot_failed=failed,
        compute=tuple(float(v) for v in x),
        mean_curve=tuple(float(v) for v in y),
        mean_curve_se=tuple(float(v) for v in boot_se),
        fixed=dict(law.fixed),
        max_extrapolation_ooms=float(max_ooms),
        notes=tuple(notes),
        holdout=holdout if holdout is not None else HoldoutCheck(refused="no per-problem data to bootstrap"),
        _law=law,
        _theta=np.asarray(theta, dtype=float),
        _boot=boot,
    )


def fit_curve(
    law: str,
    compute: Any,
    per_problem: Any,
    *,
    floor: float | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    max_extrapolation_ooms: float = 2.0,
    flat_tolerance: float = 0.01,
    holdout: int = 1,
) -> CurveFit:
    """Fit a law ('logistic', 'coverage', 'error-power-law') to a per-problem ladder.

    ``per_problem`` is (problems, rungs) of each problem's accuracy at each rung and
    ``compute`` the (rungs,) mean FLOPs per problem (samples k for 'coverage').
    Intervals: bootstrap over problems (rows), ``n_boot`` refits, percentile intervals.
    ``holdout``: how many last rungs the extrapolation check holds out (0: no check).
    """
    level = _check_level(level)
    if n_boot < 0:
        raise ConfigError(f"n_boot must be >= 0, got {n_boot}")
    x, values = _validate(compute, per_problem, ndim=2)
    n = values.shape[0]
    if n_boot and n < 2:
        raise FitError("a bootstrap over problems needs at least 2 problems")
    fit_law = make_law(law, x, floor)
    y = values.mean(axis=0)
    p = len(fit_law.param_names)
    theta = _point_fit(fit_law, x, y, max(3, p + 1), flat_tolerance)
    boot, boot_se = None, np.full(x.size, math.nan)
    if n_boot:
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)
        means = counts @ values / n
        boot_se = means.std(axis=0, ddof=1)
        boot = np.array([fit_law.fit_one(x, m, [theta], warm=True) for m in means])
        check = holdout_check(fit_law, x, y, means, holdout, level, flat_tolerance)
    else:
        check = HoldoutCheck(refused="n_boot=0: no bootstrap to give the held-out rung a band")
    return _assemble(fit_law, x, y, theta, boot, boot_se, n, n_boot, level, max_extrapolation_ooms, (), check)


def holdout_check(law: Law, x: np.ndarray, y: np.ndarray, means: np.ndarray, holdout: int, level: float,
                  flat_tolerance: float = 0.01) -> HoldoutCheck:
    """Refit ``law`` on all but the last ``holdout`` rungs (point fit and every bootstrap replicate,
    ``means`` being the replicates' mean curves) and test the held-out measurements against the band."""
    if holdout < 1:
        return HoldoutCheck(level=level, refused="switched off (holdout=0)")
    keep = x.size - holdout
    p = len(law.param_names)
    need = max(3, p + 1)
    if keep < need:
        return HoldoutCheck(level=level, refused=f"{x.size} rungs; holding out {holdout} leaves {keep}, and a "
                                                  f"{law.name} fit needs {need}")
    try:
        theta = _point_fit(law, x[:keep], y[:keep], need, flat_tolerance)
    except FitError as e:
        return HoldoutCheck(level=level, refused=f"the fit without the last rung{'s' if holdout > 1 else ''} "
                                                  f"was refused: {e}")
    xs = x[keep:]
    boot = np.array([law.fit_one(x[:keep], m[:keep], [theta], warm=True) for m in means])
    ok = ~np.isnan(boot).any(axis=1)
    if ok.sum() < max(20, 0.5 * len(boot)):
        return HoldoutCheck(level=level, refused="too many bootstrap refits without the last rung failed")
    pred = np.asarray(law.predict(xs, theta), dtype=float).ravel()
    err = law.predict(xs, boot[ok]) - means[ok][:, keep:]  # prediction - measurement, same resampled problems
    e_hat = pred - y[keep:]
    q_lo, q_hi = np.quantile(err, [(1 - level) / 2, (1 + level) / 2], axis=0)
    lo, hi = pred - (q_hi - e_hat), pred - (q_lo - e_hat)
    inside = (lo <= y[keep:]) & (y[keep:] <= hi)
    ahead = np.log10(xs / x[keep - 1])
    return HoldoutCheck(
        held_out=tuple(float(v) for v in xs),
        ooms_ahead=tuple(float(v) for v in ahead),
        measured=tuple(float(v) for v in y[keep:]),
        predicted=tuple(float(v) for v in pred),
        band=tuple((float(a), float(b)) for a, b in zip(lo, hi)),
        level=level,
        passed=bool(np.all(inside)),
    )


def fit_logistic(compute: Any, per_problem: Any, **kwargs: Any) -> CurveFit:
    """Accuracy vs log10 compute: a sigmoid with floor and ceiling (``floor=`` fixes it)."""
    return fit_curve("logistic", compute, per_problem, **kwargs)


def fit_coverage(samples: Any, per_problem: Any, **kwargs: Any) -> CurveFit:
    """Coverage (pass@k) vs samples k: c(k) = exp(a k^b), Brown et al. 2024 (arXiv 2407.21787)."""
    return fit_curve("coverage", samples, per_problem, **kwargs)


def fit_error_power_law(compute: Any, per_problem: Any, **kwargs: Any) -> CurveFit:
    """Error (1 - accuracy) vs compute: a power law with exponent alpha."""
    return fit_curve("error-power-law", compute, per_problem, **kwargs)


def fit_mean_curve(
    law: str,
    compute: Any,
    mean_curve: Any,
    *,
    floor: float | None = None,
    max_extrapolation_ooms: float = 2.0,
) -> CurveFit:
    """Fit a law to a mean curve alone (e.g. published points): no bootstrap, no intervals.

    As few points as parameters are accepted (the fit is then exactly determined and
    r2 is trivially 1); ``predict_interval`` and ``compute_for`` intervals refuse.
    """
    x, y = _validate(compute, mean_curve, ndim=1)
    fit_law = make_law(law, x, floor)
    theta = _point_fit(fit_law, x, y, len(fit_law.param_names), flat_tolerance=0.0)
    notes = ("fitted to a mean curve only: no per-problem data, no intervals",)
    return _assemble(
        fit_law, x, y, theta, None, np.full(x.size, math.nan), 0, 0, 0.95, max_extrapolation_ooms, notes
    )

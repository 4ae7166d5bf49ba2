"""The scaling laws (functional forms) oomlab fits: each with its prediction, Jacobian, fit and inverse.

Used by :mod:`oomlab.analysis.curve_fitting`, which owns the bootstrap, intervals and refusals.
Every law predicts *accuracy* (coverage for the coverage law) so that fits, bands and
``compute_for`` read the same way whatever the law.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import least_squares
from scipy.special import expit, logit

from oomlab.errors import ConfigError

FIT_LAWS = ("logistic", "coverage", "error-power-law")


class Law:
    """A curve family: predict, a least-squares fit of one mean curve, its inverse."""

    name: str
    formula: str
    param_names: tuple[str, ...]
    fixed: dict[str, float]

    def predict(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Accuracy at x; theta (..., p) broadcasts to (..., len(x))."""
        raise NotImplementedError

    def initial(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def bounds(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def inverse(self, target: float, theta: np.ndarray) -> np.ndarray:
        """Compute where the curve reaches target: +inf if never, 0 if everywhere."""
        raise NotImplementedError

    def supremum(self, theta: np.ndarray) -> np.ndarray:
        """The accuracy the curve approaches as compute grows."""
        raise NotImplementedError

    def rises(self, theta: np.ndarray) -> bool:
        """Whether accuracy increases with compute at these parameters."""
        raise NotImplementedError

    def jac(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """d predict / d theta at one theta: (len(x), p)."""
        raise NotImplementedError

    def fit_one(self, x: np.ndarray, y: np.ndarray, starts: list[np.ndarray], warm: bool = False) -> np.ndarray:
        """Least squares on the accuracy scale from each start; the best, or NaNs.

        ``warm`` (bootstrap refits from the point estimate) first tries unbounded
        Levenberg-Marquardt, which is several times faster, and keeps it only when the
        answer lies inside the bounds; otherwise the bounded trust-region fit decides.
        """
        lo, hi = self.bounds(x)
        resid = lambda t: self.predict(x, t) - y  # noqa: E731
        jac = lambda t: self.jac(x, t)  # noqa: E731
        if warm and len(starts) == 1:
            try:
                res = least_squares(resid, starts[0], jac=jac, method="lm")
                if res.success and np.all(res.x >= lo) and np.all(res.x <= hi):
                    return res.x
            except (ValueError, FloatingPointError):
                pass
        best, best_cost = np.full(len(self.param_names), np.nan), np.inf
        for start in starts:
            start = np.clip(start, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))
            try:
                res = least_squares(resid, start, jac=jac, bounds=(lo, hi), method="trf")
            except (ValueError, FloatingPointError):
                continue
            if res.success and np.isfinite(res.cost) and res.cost < best_cost:
                best, best_cost = res.x, res.cost
        return best


class Logistic(Law):
    name = "logistic"
    formula = "acc = floor + (ceiling - floor) * sigmoid(slope_per_oom * (log10(C) - midpoint_log10))"

    def __init__(self, floor: float | None = None):
        self.floor = floor
        self.fixed = {} if floor is None else {"floor": float(floor)}
        free = ("ceiling", "slope_per_oom", "midpoint_log10")
        self.param_names = free if floor is not None else ("floor", *free)

    def _full(self, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        theta = np.asarray(theta, dtype=float)
        if self.floor is not None:
            return (np.full(theta.shape[:-1], self.floor), *np.moveaxis(theta, -1, 0))
        return tuple(np.moveaxis(theta, -1, 0))

    def predict(self, x, theta):
        f, c, s, m = (v[..., None] for v in self._full(theta))
        return f + (c - f) * expit(s * (np.log10(x) - m))

    def jac(self, x, theta):
        f, c, slope, m = (float(v) for v in self._full(theta))
        u = np.log10(x)
        sig = expit(slope * (u - m))
        d = (c - f) * sig * (1 - sig)
        cols = [sig, d * (u - m), -d * slope]
        return np.column_stack(cols if self.floor is not None else [1 - sig, *cols])

    def initial(self, x, y):
        u = np.log10(x)
        starts = []
        for m in np.quantile(u, [0.25, 0.5, 0.75]):
            for s in (0.5, 1.5, 4.0):
                head = [] if self.floor is not None else [max(0.0, y.min() - 0.02)]
                starts.append(np.array([*head, min(1.0, y.max() + 0.02), s, m]))
        return starts

    def bounds(self, x):
        u = np.log10(x)
        lo = [0.0, 1e-3, u.min() - 3.0]
        hi = [1.0, 50.0, u.max() + 3.0]
        if self.floor is None:
            lo, hi = [0.0, *lo], [1.0, *hi]
        return np.array(lo), np.array(hi)

    def inverse(self, target, theta):
        f, c, s, m = self._full(np.atleast_2d(theta))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inf where p -> 1 is the answer
            p = (target - f) / (c - f)
            u = m + logit(np.clip(p, 1e-300, 1 - 1e-16)) / s
            out = np.where(p >= 1, np.inf, np.where(p <= 0, 0.0, 10.0**u))
        return out

    def supremum(self, theta):
        f, c, _, _ = self._full(np.atleast_2d(theta))
        return c

    def rises(self, theta):
        f, c, _, _ = self._full(theta)
        return bool(c > f)


class ExpPowerLaw(Law):
    name = "coverage"
    formula = "coverage = exp(a * k**b)  (Brown et al. 2024, arXiv 2407.21787, Sec. 3)"
    param_names = ("a", "b")
    fixed: dict[str, float] = {}

    def predict(self, x, theta):
        theta = np.asarray(theta, dtype=float)
        a, b = theta[..., 0:1], theta[..., 1:2]
        return np.exp(a * np.asarray(x, dtype=float) ** b)

    def jac(self, x, theta):
        a, b = theta
        kb = x**b
        c = np.exp(a * kb)
        return np.column_stack([c * kb, c * a * kb * np.log(x)])

    def initial(self, x, y):
        # log(-log c) = log(-a) + b log k: a straight line, solved exactly.
        g = np.log(-np.log(np.clip(y, 1e-9, 1 - 1e-9)))
        b, log_neg_a = np.polyfit(np.log(x), g, 1)
        return [np.array([-math.exp(log_neg_a), b]), np.array([-1.0, -0.3])]

    def bounds(self, x):
        return np.array([-1e3, -5.0]), np.array([-1e-9, 5.0])

    def inverse(self, target, theta):
        a, b = np.atleast_2d(theta).T
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            k = (math.log(target) / a) ** (1.0 / b)
            # b < 0: c rises from 0 (k -> 0) to 1 (k -> inf); every target in (0,1) is reached.
            # b >= 0: c does not rise; a target above c(1) is never reached.
            out = np.where(b < 0, k, np.where(target <= np.exp(a), 0.0, np.inf))
        return out

    def supremum(self, theta):
        a, b = np.atleast_2d(theta).T
        return np.where(b < 0, 1.0, np.exp(a))

    def rises(self, theta):
        return bool(theta[1] < 0)


class ErrorPowerLaw(Law):
    name = "error-power-law"
    formula = "1 - acc = error_at_ref * (C / ref_compute) ** (-alpha)"
    param_names = ("error_at_ref", "alpha")

    def __init__(self, ref_compute: float):
        self.ref_log10 = math.log10(ref_compute)
        self.fixed = {"ref_compute": float(ref_compute)}

    def predict(self, x, theta):
        theta = np.asarray(theta, dtype=float)
        e, alpha = theta[..., 0:1], theta[..., 1:2]
        return 1.0 - e * 10.0 ** (-alpha * (np.log10(x) - self.ref_log10))

    def jac(self, x, theta):
        e, alpha = theta
        v = np.log10(x) - self.ref_log10
        w = 10.0 ** (-alpha * v)
        return np.column_stack([-w, e * w * math.log(10) * v])

    def initial(self, x, y):
        slope, icpt = np.polyfit(np.log10(x) - self.ref_log10, np.log10(np.clip(1 - y, 1e-9, 1)), 1)
        return [np.array([10.0**icpt, -slope]), np.array([float(np.mean(1 - y)), 0.1])]

    def bounds(self, x):
        return np.array([1e-12, -5.0]), np.array([1e3, 5.0])

    def inverse(self, target, theta):
        e, alpha = np.atleast_2d(theta).T
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            u = self.ref_log10 - np.log10((1.0 - target) / e) / alpha
            out = np.where(alpha > 0, 10.0**u, np.where(1 - target >= e, 0.0, np.inf))
        return out

    def supremum(self, theta):
        e, alpha = np.atleast_2d(theta).T
        return np.where(alpha > 0, 1.0, 1.0 - e)

    def rises(self, theta):
        return bool(theta[1] > 0)


def make_law(law: str, x: np.ndarray, floor: float | None) -> Law:
    if law == "logistic":
        if floor is not None and not 0.0 <= floor <= 1.0:
            raise ConfigError(f"floor must lie in [0, 1], got {floor}")
        return Logistic(floor)
    if floor is not None:
        raise ConfigError(f"floor applies to the logistic law only, not '{law}'")
    if law == "coverage":
        return ExpPowerLaw()
    if law == "error-power-law":
        return ErrorPowerLaw(10.0 ** float(np.mean(np.log10(x))))
    raise ConfigError(f"unknown fit law '{law}'; valid laws: {', '.join(FIT_LAWS)}")

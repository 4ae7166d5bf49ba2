"""Intervals for a mean over problems, chosen by what the column holds, and for a difference of two.

A column of 0/1 outcomes (greedy, a re-run strategy: one right-or-wrong answer per problem) is a
binomial count, and the percentile bootstrap fails there: at 2 correct of 100 most resamples hold
0-4 correct, and at 0 of 30 every resample is 0 (a zero-width interval). Such columns get the
Wilson score interval with Brown, Cai & DasGupta's (2001, Statistical Science 16(2), §4.1.1)
Poisson correction for counts of 1-3 at either end, which removes Wilson's coverage dip there.
Any other column (pass@k, maj@k estimates in [0, 1]) keeps the percentile bootstrap over problems.

A difference of two means from DIFFERENT problems is unpaired: each side's own interval is
combined by MOVER (Zou & Donner 2008, "Construction of confidence limits about effect measures",
Stat. Med. 27:1693), which for two proportions with Wilson intervals is Newcombe's (1998, Stat.
Med. 17:873) hybrid score interval, method 10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2, norm

from oomlab.analysis.bootstrap import bootstrap_ci

__all__ = [
    "BOOTSTRAP",
    "WILSON",
    "MeanInterval",
    "column_intervals",
    "is_binary",
    "mean_interval",
    "mover_difference",
    "wilson_interval",
]

WILSON = "Wilson score (Brown-Cai-DasGupta ends)"
BOOTSTRAP = "percentile bootstrap over problems"
EXACT = "none (value given as exact)"


@dataclass(frozen=True)
class MeanInterval:
    """A mean, its interval, and the name of the method that made the interval."""

    mean: float
    lo: float
    hi: float
    method: str


def is_binary(values: np.ndarray) -> bool:
    """True when every value is exactly 0 or 1: one right-or-wrong outcome per problem."""
    v = np.asarray(values, dtype=float)
    return v.size > 0 and bool(np.all((v == 0.0) | (v == 1.0)))


def wilson_interval(successes: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion, with Poisson bounds for 1-3 successes
    (or failures) as Brown, Cai & DasGupta 2001 (§4.1.1) recommend.

    Never zero width for n >= 1: at 0 of n the upper end is about z²/(n + z²), not 0.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    x = float(successes)
    if not 0.0 <= x <= n:
        raise ValueError(f"successes must lie in 0..{n}, got {successes}")
    alpha = 1.0 - level
    z = float(norm.ppf(1.0 - alpha / 2))
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if x == 0 else max(0.0, centre - half)
    hi = 1.0 if x == n else min(1.0, centre + half)
    ends = 2 if n <= 50 else 3  # x* of Brown et al.
    if 1 <= x <= ends and x == int(x):
        lo = 0.5 * float(chi2.ppf(alpha / 2, 2 * x)) / n
    if 1 <= n - x <= ends and x == int(x):
        hi = 1.0 - 0.5 * float(chi2.ppf(alpha / 2, 2 * (n - x))) / n
    return lo, hi


def mean_interval(values: np.ndarray, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> MeanInterval:
    """Interval for the mean of per-problem values: Wilson for a 0/1 column, else percentile bootstrap."""
    v = np.asarray(values, dtype=float).ravel()
    if is_binary(v):
        lo, hi = wilson_interval(float(v.sum()), v.size, level)
        return MeanInterval(float(v.mean()), lo, hi, WILSON)
    mean, lo, hi = bootstrap_ci(v, level=level, n_boot=max(n_boot, 1), seed=seed)
    return MeanInterval(float(mean), float(lo), float(hi), BOOTSTRAP)


def column_intervals(
    table: np.ndarray, level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Per column of a (problems, rungs) table: mean, lo, hi and the interval's method.

    Bootstrap columns share one paired bootstrap (the same resampled problems for every rung);
    0/1 columns are replaced by their Wilson interval.
    """
    x = np.asarray(table, dtype=float)
    mean, lo, hi = bootstrap_ci(x, level=level, n_boot=max(n_boot, 1), seed=seed)
    lo, hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
    methods = []
    for j in range(x.shape[1]):
        if is_binary(x[:, j]):
            lo[j], hi[j] = wilson_interval(float(x[:, j].sum()), x.shape[0], level)
            methods.append(WILSON)
        else:
            methods.append(BOOTSTRAP)
    return np.asarray(mean, dtype=float), lo, hi, methods


def mover_difference(a: MeanInterval, b: MeanInterval) -> tuple[float, float]:
    """Interval for a.mean - b.mean from independent samples, combining each side's interval (MOVER).

    L = d - sqrt((a - l_a)² + (u_b - b)²),  U = d + sqrt((u_a - a)² + (b - l_b)²).
    Each side's interval carries its own skew near 0 or 1, which a Wald interval on the difference
    would lose.
    """
    d = a.mean - b.mean
    lo = d - math.sqrt((a.mean - a.lo) ** 2 + (b.hi - b.mean) ** 2)
    hi = d + math.sqrt((a.hi - a.mean) ** 2 + (b.mean - b.lo) ** 2)
    return lo, hi


def describe_methods(methods: list[str] | tuple[str, ...]) -> str:
    """One caption phrase for the interval methods of a table's rows, e.g. for mixed 0/1 and bootstrap rungs."""
    seen = list(dict.fromkeys(m for m in methods if m))
    if not seen:
        return "no intervals"
    if seen == [WILSON]:
        return f"{WILSON} (one 0/1 outcome per problem)"
    if WILSON in seen:
        rest = ", ".join(m for m in seen if m != WILSON)
        return f"{WILSON} for 0/1 rungs (one outcome per problem), {rest} for the others"
    return ", ".join(seen)

"""Percentile bootstrap intervals over problems.

Efron & Tibshirani 1993, "An Introduction to the Bootstrap", ch. 13 (the percentile interval).
"""

from __future__ import annotations

import numpy as np

__all__ = ["bootstrap_ci"]

_CHUNK_CELLS = 4_000_000  # resampled values held at once, so a large table never needs gigabytes


def bootstrap_ci(
    per_problem: np.ndarray | list, level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float | np.ndarray, float | np.ndarray, float | np.ndarray]:
    """Mean and percentile-bootstrap interval of per-problem values, resampling problems (rows).

    A 1-D input gives floats. A 2-D input (problems x rungs) gives one value per column, and every
    bootstrap replicate resamples the SAME problems for all columns (a paired bootstrap), so
    differences between rungs are not blurred by which problems were drawn. Deterministic for a
    given seed.
    """
    x = np.asarray(per_problem, dtype=float)
    if x.ndim not in (1, 2):
        raise ValueError(f"per_problem must be 1-D or 2-D (problems x rungs), got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("no problems to bootstrap over")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    table = x.reshape(x.shape[0], -1)
    n_problems, n_cols = table.shape
    rng = np.random.default_rng(seed)
    means = np.empty((n_boot, n_cols))
    chunk = max(1, _CHUNK_CELLS // (n_problems * n_cols))
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        rows = rng.integers(0, n_problems, size=(stop - start, n_problems))
        means[start:stop] = table[rows].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    mean = table.mean(axis=0)
    if x.ndim == 1:
        return float(mean[0]), float(lo[0]), float(hi[0])
    return mean, lo, hi

"""Compute-optimal test-time strategy per difficulty bin (Snell et al. 2024, arXiv 2408.03314, §3.2, §5).

Problems are binned by the model's own pass@1 estimated from the draw (Snell et al. bin by
quantiles of pass@1 into five levels). For each bin and each compute budget, the
compute-optimal choice is the (strategy, rung) with the highest mean accuracy in that bin
among those costing at most the budget. Applying each bin's choice to its problems gives
the "oracle-binned" accuracy at that budget; the gain is its margin over the best single
(strategy, rung) applied to every problem under the same budget.

The bins come from the same draw whose accuracies are compared, so both the binning and the
per-bin choice see the answers: this is Snell's *oracle* difficulty and an optimistic upper
bound on what a deployed policy that must predict difficulty would get.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from oomlab.errors import ConfigError

__all__ = [
    "BudgetChoice",
    "DifficultyBins",
    "DifficultyResult",
    "bin_by_pass1",
    "compute_optimal_by_difficulty",
]


@dataclass(frozen=True, eq=False)
class DifficultyBins:
    """Problems grouped by pass@1. Bin 0 is the hardest (lowest pass@1)."""

    edges: tuple[float, ...]
    labels: tuple[str, ...]
    assignment: np.ndarray  # (problems,) bin index
    counts: tuple[int, ...]
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "labels": list(self.labels), "counts": list(self.counts),
                "method": self.method}


def bin_by_pass1(
    pass1: Any, n_bins: int = 5, method: str = "quantile", edges: Sequence[float] | None = None
) -> DifficultyBins:
    """Bin problems by pass@1: ``quantile`` (equal-count, as Snell et al.) or ``fixed`` edges.

    Quantile edges that coincide (many problems at pass@1 = 0, say) merge their bins, so
    fewer than ``n_bins`` may come back; empty fixed bins are dropped.
    """
    p = np.asarray(pass1, dtype=float)
    if p.ndim != 1 or p.size == 0 or not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ConfigError("pass1 must be a non-empty vector of values in [0, 1]")
    if n_bins < 1:
        raise ConfigError(f"n_bins must be at least 1, got {n_bins}")
    if method == "quantile":
        e = np.unique(np.round(np.quantile(p, np.linspace(0, 1, n_bins + 1)), 9))  # float noise must not split a bin
        if e.size == 1:
            e = np.array([e[0], e[0]])
    elif method == "fixed":
        e = np.asarray(edges if edges is not None else np.linspace(0, 1, n_bins + 1), dtype=float)
        if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0) or e[0] > p.min() or e[-1] < p.max():
            raise ConfigError("fixed edges must increase and span every pass@1 value")
    else:
        raise ConfigError(f"unknown binning method '{method}'; valid: quantile, fixed")
    # Left-closed bins, the last one closed on both sides.
    idx = np.clip(np.searchsorted(e, p, side="right") - 1, 0, max(e.size - 2, 0))
    used = np.unique(idx)
    remap = {int(old): new for new, old in enumerate(used)}
    assignment = np.array([remap[int(i)] for i in idx])
    lows, highs = e[used], e[used + 1]
    labels = tuple(f"pass@1 {lo:.2f}–{hi:.2f}" for lo, hi in zip(lows, highs))
    counts = tuple(int(np.sum(assignment == b)) for b in range(used.size))
    return DifficultyBins(tuple(float(v) for v in np.append(lows, highs[-1])), labels, assignment, counts, method)


@dataclass(frozen=True)
class BudgetChoice:
    """The best affordable (strategy, rung): its mean compute and accuracy. None where nothing fits."""

    budget: float
    strategy: str | None
    rung: int | None
    compute: float
    accuracy: float


@dataclass(frozen=True)
class DifficultyResult:
    """Per bin and budget, the compute-optimal choice; overall, its gain over one strategy for all.

    ``compute_savings[j]``: how many times less compute the oracle-binned policy needs to
    match the best single choice's accuracy at ``budgets[j]`` (Snell et al. report up to 4×
    against best-of-N); NaN where it never matches within the rungs measured.
    """

    bins: DifficultyBins
    budgets: tuple[float, ...]
    per_bin: tuple[tuple[BudgetChoice, ...], ...]  # [bin][budget]
    oracle_binned_accuracy: tuple[float, ...]
    oracle_binned_compute: tuple[float, ...]  # mean compute per problem actually spent
    best_single: tuple[BudgetChoice, ...]
    gain: tuple[float, ...]
    compute_savings: tuple[float, ...]
    oracle_difficulty: bool = True
    note: str = ("bins and choices use the same draw (oracle difficulty): an upper bound on a "
                 "policy that must predict difficulty")

    def to_dict(self) -> dict[str, Any]:
        def choice(c: BudgetChoice) -> dict[str, Any]:
            return {"budget": c.budget, "strategy": c.strategy, "rung": c.rung,
                    "compute": c.compute, "accuracy": c.accuracy}

        return {
            "bins": self.bins.to_dict(),
            "budgets": list(self.budgets),
            "per_bin": [[choice(c) for c in row] for row in self.per_bin],
            "oracle_binned_accuracy": list(self.oracle_binned_accuracy),
            "oracle_binned_compute": list(self.oracle_binned_compute),
            "best_single": [choice(c) for c in self.best_single],
            "gain": list(self.gain),
            "compute_savings": list(self.compute_savings),
            "oracle_difficulty": self.oracle_difficulty,
            "note": self.note,
        }


def _options(accuracy: Mapping[str, Any], compute: Mapping[str, Any], n_problems: int):
    """Flatten strategies × rungs into (names, rungs, compute, per-problem accuracy columns)."""
    names, rungs, cost, cols = [], [], [], []
    for name, acc in accuracy.items():
        a = np.asarray(acc, dtype=float)
        c = np.asarray(compute.get(name, []), dtype=float)
        if a.ndim != 2 or a.shape[0] != n_problems or c.shape != (a.shape[1],):
            raise ConfigError(
                f"strategy '{name}': accuracy must be ({n_problems} problems, rungs) and "
                f"compute one value per rung"
            )
        if not np.all(np.isfinite(a)) or np.any((a < 0) | (a > 1)) or np.any(~np.isfinite(c) | (c <= 0)):
            raise ConfigError(f"strategy '{name}': accuracy must lie in [0, 1] and compute be positive")
        for r in range(a.shape[1]):
            names.append(name)
            rungs.append(r)
            cost.append(c[r])
            cols.append(a[:, r])
    return names, np.array(rungs), np.array(cost), np.column_stack(cols)


def _best(mean_acc: np.ndarray, cost: np.ndarray, budget: float, names, rungs) -> BudgetChoice:
    ok = cost <= budget * (1 + 1e-12)
    if not ok.any():
        return BudgetChoice(float(budget), None, None, math.nan, math.nan)
    # Highest accuracy; among ties, the cheaper option.
    order = np.lexsort((cost, -mean_acc))
    j = next(int(i) for i in order if ok[i])
    return BudgetChoice(float(budget), names[j], int(rungs[j]), float(cost[j]), float(mean_acc[j]))


def compute_optimal_by_difficulty(
    accuracy: Mapping[str, Any],
    compute: Mapping[str, Any],
    bins: DifficultyBins,
    budgets: Sequence[float] | None = None,
) -> DifficultyResult:
    """Per difficulty bin and budget, the best (strategy, rung) with compute <= budget.

    ``accuracy[strategy]`` is (problems, rungs), ``compute[strategy]`` the (rungs,) mean
    FLOPs per problem. Default budgets: every rung's compute, ascending.
    """
    if not accuracy:
        raise ConfigError("no strategies given")
    n = bins.assignment.size
    names, rungs, cost, cols = _options(accuracy, compute, n)
    grid = np.unique(cost)
    budgets_arr = np.asarray(budgets if budgets is not None else grid, dtype=float)
    if budgets_arr.ndim != 1 or np.any(budgets_arr <= 0):
        raise ConfigError("budgets must be positive")
    weights = np.array(bins.counts, dtype=float) / n
    bin_means = np.array([cols[bins.assignment == b].mean(axis=0) for b in range(len(bins.counts))])
    overall = cols.mean(axis=0)

    def binned(budget: float) -> tuple[tuple[BudgetChoice, ...], float, float]:
        choices = tuple(_best(bin_means[b], cost, budget, names, rungs) for b in range(len(bins.counts)))
        acc = float(sum(w * c.accuracy for w, c in zip(weights, choices)))
        spent = float(sum(w * c.compute for w, c in zip(weights, choices)))
        return choices, acc, spent

    # The binned policy on the full grid of rung costs, to find the compute it needs.
    grid_acc = np.array([binned(b)[1] for b in grid])
    grid_spent = np.array([binned(b)[2] for b in grid])

    per_budget, single, savings = [], [], []
    for budget in budgets_arr:
        choices, acc, spent = binned(budget)
        per_budget.append((choices, acc, spent))
        best = _best(overall, cost, budget, names, rungs)
        single.append(best)
        reach = np.nonzero(grid_acc >= best.accuracy - 1e-12)[0] if not math.isnan(best.accuracy) else []
        savings.append(best.compute / grid_spent[reach[0]] if len(reach) else math.nan)

    per_bin = tuple(tuple(pb[0][b] for pb in per_budget) for b in range(len(bins.counts)))
    oracle_acc = tuple(pb[1] for pb in per_budget)
    return DifficultyResult(
        bins=bins,
        budgets=tuple(float(b) for b in budgets_arr),
        per_bin=per_bin,
        oracle_binned_accuracy=oracle_acc,
        oracle_binned_compute=tuple(pb[2] for pb in per_budget),
        best_single=tuple(single),
        gain=tuple(a - s.accuracy for a, s in zip(oracle_acc, single)),
        compute_savings=tuple(float(s) for s in savings),
    )

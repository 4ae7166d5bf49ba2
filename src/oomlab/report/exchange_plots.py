"""The train↔test compute figures: the classic two-panel figure and the iso-accuracy curves with their slope."""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from oomlab.analysis.exchange_rate import ExchangeRate, ModelRun  # noqa: E402

__all__ = ["plot_iso_accuracy", "plot_two_panel"]


def plot_two_panel(models: Sequence[ModelRun], path: str, *, test_levels: Sequence[float] | None = None,
                   title: str | None = None) -> str:
    """The classic two-panel figure (Jones 2021, Fig. 1 style), both panels log-x.

    Left: accuracy vs train-time compute, one line per fixed test-time budget.
    Right: accuracy vs test-time compute, one line per model.
    """
    unit = models[0].unit if models else "FLOPs"
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
                      label=f"test compute {level:.1e} {unit}")
    left.set_xscale("log")
    left.set_xlabel("train-time compute (FLOPs)")
    left.set_ylabel("accuracy")
    left.set_title("accuracy vs train-time compute")
    left.legend(fontsize=8, loc="best")
    for m, c in zip(order, colours):
        right.plot(m.test_flops, m.mean_curve, "o-", color=c, label=f"{m.name} (train {m.train_flops:.1e})")
    right.set_xscale("log")
    right.set_xlabel(f"test-time compute ({unit} per problem)")
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
    ax.set_ylabel(f"test-time compute to reach target ({result.test_unit} per problem)")
    lo, hi = result.slope_interval
    ax.set_title(title or (f"slope {result.slope:.2f} [{lo:.2f}, {hi:.2f}]: 10× train FLOPs ≈ "
                           f"{result.test_factor_per_10x_train:.1f}× test {result.test_unit}"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="iso-accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

"""The lab's figures: the two-panel train/test compute figure, and the training loss curves.

Left panel (Jones 2021, arXiv 2104.03113, Fig. 1 style): accuracy against training FLOPs, one
line per test-time budget (greedy, majority@k, ...; oracle pass@k dashed). Right panel: accuracy
against test-time FLOPs per problem, one line per trained model. Error bars are each rung's 95%
interval (Wilson for 0/1 columns, bootstrap over problems otherwise: analysis.curves).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from oomlab.lab.exchange import BASELINE, LabPoint  # noqa: E402

STYLES = {"cot": "-", "direct": "--"}


def _series(points: list[LabPoint], fmt: str, key: str, rung: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train FLOPs, accuracy, lo, hi) of one strategy rung across the budgets (seeds averaged)."""
    rows = {}
    for p in points:
        if p.format == fmt and key in p.curves:
            c = p.curve(key)
            rows.setdefault(p.budget, []).append((p.train_flops, c.accuracy[rung], c.lo[rung], c.hi[rung]))
    data = np.array([np.mean(v, axis=0) for _, v in sorted(rows.items())])
    return data[:, 0], data[:, 1], data[:, 2], data[:, 3]


def plot_two_panel(points: list[LabPoint], out: str | Path, strategies: list[tuple[str, str]], title: str = "",
                   chance: float = 0.0, primary: str = "cot") -> Path:
    """`strategies`: (stored key, legend label) of the sampled strategies to draw beside greedy.

    The primary format gets every strategy; the others greedy alone, so the panel stays readable.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), dpi=130)
    formats = sorted({p.format for p in points}, key=lambda f: (f != primary, f))
    colours = plt.get_cmap("tab10")
    for f in formats:
        lines = [(BASELINE, "greedy", 0)]
        for key, label in strategies if f == formats[0] else []:
            curve = next(p for p in points if p.format == f).curve(key)
            ks = list(curve.ks)
            for k in sorted({ks[min(2, len(ks) - 1)], ks[-1]} if not curve.oracle else {ks[-1]}):
                lines.append((key, f"{label}@{k}", ks.index(k)))
        for i, (key, label, rung) in enumerate(lines):
            x, y, lo, hi = _series(points, f, key, rung)
            oracle = next(p for p in points if p.format == f).curve(key).oracle
            style = ":" if oracle else ("-" if f == primary else "--")
            left.errorbar(x, 100 * y, yerr=[100 * (y - lo), 100 * (hi - y)], fmt=style, marker="o", ms=4, capsize=2,
                          color=colours(i), alpha=1.0 if f == formats[0] else 0.55, lw=1.6,
                          label=f"{f}: {label}" + (" (oracle)" if oracle and "oracle" not in label else ""))
    if chance:
        for ax in (left, right):
            ax.axhline(100 * chance, color="0.5", lw=0.8, ls=(0, (1, 3)))
        left.annotate(f"chance ({100 * chance:.0f}%)", (0.01, 100 * chance), xycoords=("axes fraction", "data"),
                      textcoords="offset points", xytext=(0, 3), fontsize=7, color="0.4")
    left.set_xscale("log")
    left.set_xlabel("training compute (FLOPs, counted: 6N per token + attention)")
    left.set_ylabel("accuracy on held-out problems (%)")
    left.set_title("accuracy vs training compute, per test-time budget", fontsize=10)
    left.legend(fontsize=7, loc="upper left")
    budgets = sorted({p.budget for p in points})
    cmap = plt.get_cmap("viridis")
    key = strategies[0][0] if strategies else BASELINE
    for p in sorted(points, key=lambda p: (p.format, p.budget, p.seed)):
        c = p.curve(key)
        colour = cmap(budgets.index(p.budget) / max(1, len(budgets) - 1))
        x, y = np.array(c.test_flops), 100 * c.accuracy
        right.plot(x, y, "-" if p.format == primary else "--", marker="o", ms=3.5, color=colour, lw=1.5,
                   label=f"{p.format} {p.train_flops:.1e}" if p.seed == min(q.seed for q in points) else None)
        right.fill_between(x, 100 * np.array(c.lo), 100 * np.array(c.hi), color=colour, alpha=0.08, lw=0)
        g = p.curve(BASELINE)
        right.plot(g.test_flops, 100 * g.accuracy, "D" if p.format == primary else "s", color=colour, ms=5,
                   mfc=colour if p.format == primary else "white")
    right.set_xscale("log")
    right.set_xlabel("test-time compute (FLOPs per problem)")
    right.set_title(f"accuracy vs test-time compute per model\n({strategies[0][1] if strategies else 'greedy'} "
                    f"k=1…n; {primary} solid, others dashed; ◆/□ greedy)", fontsize=10)
    right.legend(fontsize=6.5, loc="lower right", ncol=2, title="format, training FLOPs", title_fontsize=7,
                 handlelength=3.5)
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.25)
        ax.set_ylim(-2, 102)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_losses(entries: list[dict], out: str | Path) -> Path:
    """Training loss (answer tokens) against training FLOPs so far, one line per model."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=130)
    budgets = sorted({e["budget"] for e in entries})
    cmap = plt.get_cmap("viridis")
    for e in entries:
        if not e.get("losses"):
            continue
        arr = np.array(e["losses"], dtype=float)
        ax.plot(arr[:, 2], arr[:, 3], STYLES.get(e["format"], "-"), lw=1.2,
                color=cmap(budgets.index(e["budget"]) / max(1, len(budgets) - 1)), label=e["name"])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training FLOPs so far")
    ax.set_ylabel("loss on answer tokens (nats)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out

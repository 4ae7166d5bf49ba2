"""The scaling plot: accuracy against log10 inference FLOPs per problem, one line per strategy."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from oomlab.analysis.curves import Curve  # noqa: E402


def plot_curves(curves: list[Curve], out: str | Path, title: str = "", energy_note: str = "") -> Path:
    """Accuracy vs FLOPs (tokens when model facts are unknown; log x) with 95% intervals; oracles dashed."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=150)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    on_tokens = any(not np.all(np.isfinite([r.flops for r in c.rungs])) for c in curves)
    if len(curves) > len(colors):  # no two strategies share a colour
        colors = [plt.get_cmap("tab20")(i) for i in range(20)]
    for i, c in enumerate(curves):
        # model facts unknown for any curve: every curve on tokens, so one axis never mixes units
        x = np.array([r.tokens if on_tokens else r.flops for r in c.rungs])
        y = np.array([r.accuracy for r in c.rungs]) * 100
        lo = np.array([r.lo for r in c.rungs]) * 100
        hi = np.array([r.hi for r in c.rungs]) * 100
        color = colors[i % len(colors)]
        style = "--" if c.oracle else "-"
        marker = "o" if len(x) > 1 else "D"
        ax.plot(x, y, style, marker=marker, color=color, label=c.label, lw=1.8, ms=4)
        if len(x) > 1:
            ax.fill_between(x, lo, hi, color=color, alpha=0.15, lw=0)
        else:
            ax.errorbar(x, y, yerr=[y - lo, hi - y], color=color, capsize=3, lw=1)
        for r, xi, yi in zip(c.rungs, x, y):
            if len(c.rungs) > 1 and r.k in (c.rungs[0].k, c.rungs[-1].k):
                ax.annotate(f"k={r.k}", (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=7, color=color)
    ax.set_xscale("log")
    ax.set_xlabel(f"inference {'tokens' if on_tokens else 'FLOPs'} per problem (log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.grid(True, which="both", alpha=0.25)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="best", title="dashed = oracle (coverage, pass@k)", title_fontsize=7)
    if energy_note:
        fig.text(0.01, 0.01, energy_note, fontsize=6.5, color="0.4")
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out

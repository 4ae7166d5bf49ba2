"""The goodness-of-fit figure of one curve fit: data with bootstrap SE, fitted law and band, residuals."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from oomlab.analysis.curve_fitting import CurveFit  # noqa: E402

__all__ = ["plot_fit"]


def plot_fit(fit: CurveFit, path: str, *, title: str | None = None, xlabel: str | None = None) -> str:
    """Goodness-of-fit figure (PNG): data with bootstrap SE, fitted curve and band, residuals."""
    x, y = np.asarray(fit.compute), np.asarray(fit.mean_curve)
    se = np.asarray(fit.mean_curve_se)
    reach = 10.0 ** min(fit.max_extrapolation_ooms, 1.0)
    grid = np.geomspace(x[0], x[-1] * reach, 200)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(7, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.errorbar(x, y, yerr=None if np.isnan(se).all() else se, fmt="o", color="k",
                 capsize=3, label=f"mean over {fit.n_problems or '?'} problems")
    inside = grid <= x[-1]
    top.plot(grid[inside], fit.predict(grid[inside]), color="C0", label=f"{fit.law} fit")
    extrap = {"unreliable": "extrapolation: UNRELIABLE (held-out rung outside its band)",
              "unchecked": "extrapolation (assumes the law holds; unchecked)"}.get(
        fit.holdout.extrapolation, "extrapolation (assumes the law holds; held-out check passed)")
    top.plot(grid[~inside], fit.predict(grid[~inside]), color="C3" if fit.holdout.passed is False else "C0",
             ls="--", label=extrap)
    if fit.n_boot - fit.n_boot_failed >= 2:
        lo, hi = fit.predict_interval(grid)
        top.fill_between(grid, lo, hi, color="C0", alpha=0.2,
                         label=f"{100 * fit.level:g}% bootstrap band")
    top.set_ylabel("coverage (pass@k)" if fit.law == "coverage" else "accuracy")
    top.set_xscale("log")
    top.set_ylim(-0.02, 1.02)
    top.grid(True, which="both", alpha=0.3)
    top.legend(loc="best", fontsize=8)
    top.set_title(title or f"{fit.law}: R² = {fit.r2:.3f}, RMSE = {fit.rmse:.3f} (mean curve)")
    bottom.axhline(0, color="k", lw=0.8)
    bottom.plot(x, y - fit.predict(x), "o", color="C3")
    bottom.set_ylabel("residual")
    bottom.set_xlabel(xlabel or ("samples k" if fit.law == "coverage" else "compute (FLOPs per problem)"))
    bottom.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

"""The trendline chart: dated points on a log axis, the fitted line, and its projection band.

One picture of the OOMs argument (SA ch. I draws the same kind of chart): the data,
a straight line through it in log space, and where the line goes if it holds —
the band spans the slope's interval. Measured runs are drawn as stars beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from oomlab.forecast.trends import TrendFit  # noqa: E402


@dataclass(frozen=True)
class Series:
    """Dated points of one kind (one capability level, or notable models), with their fit."""

    label: str
    years: tuple[float, ...]
    values: tuple[float, ...]
    names: tuple[str, ...] = ()  # per-point labels, drawn when the chart is annotated
    fit: TrendFit | None = None


@dataclass(frozen=True)
class MeasuredPoint:
    """A figure measured by an oomlab run, drawn as a star."""

    year: float
    value: float
    label: str


def _rate_text(fit: TrendFit) -> str:
    arrow = "growth" if fit.direction == "growth" else "fall"
    text = f"{fit.fold_per_year:.3g}×/yr {arrow}"
    if fit.ooms_per_year_low is not None and fit.ooms_per_year_high is not None:
        ends = sorted(10 ** abs(s) for s in (fit.ooms_per_year_low, fit.ooms_per_year_high))
        if fit.ooms_per_year_low * fit.ooms_per_year_high > 0:
            text += f" [{ends[0]:.2g}–{ends[1]:.2g}]"
    return text


def _label_points(fig: Any, ax: Any, points: list[tuple[float, float, str]]) -> None:
    """Name each point, trying four corners so labels neither overprint each other nor the points."""
    ax.autoscale_view()
    fig.canvas.draw()
    to_px = ax.transData.transform
    dpi_scale = fig.dpi / 72  # offsets are in points
    markers = [to_px((x, y)) for x, y, _ in points]
    taken: list[tuple[float, float, float, float]] = [(mx - 4, my - 4, mx + 4, my + 4) for mx, my in markers]
    for (x, y, name), (px, py) in zip(points, markers, strict=True):
        width, height = len(name) * 4.2 * dpi_scale, 8 * dpi_scale
        for dx, dy, ha in ((5, 4, "left"), (5, -10, "left"), (-5, 4, "right"), (-5, -10, "right")):
            x0 = px + dx * dpi_scale - (width if ha == "right" else 0)
            y0 = py + dy * dpi_scale
            box = (x0, y0, x0 + width, y0 + height)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in taken):
                break
        taken.append(box)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(dx, dy), ha=ha, fontsize=7, color="0.25")


def plot_trends(
    series: Sequence[Series],
    out: str | Path,
    *,
    title: str,
    ylabel: str,
    project_years: float = 3.0,
    measured: Sequence[MeasuredPoint] = (),
    annotate: bool = False,
) -> Path:
    """Write the chart as a PNG and return its path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    colors = plt.get_cmap("tab10").colors
    for i, s in enumerate(series):
        color = colors[i % len(colors)]
        ax.scatter(s.years, s.values, color=color, s=30, zorder=3, label=f"{s.label} (data)")
        fit = s.fit
        if fit is None:
            continue
        xs = np.linspace(fit.start_year, fit.end_year, 50)
        ax.plot(xs, [fit.predict(x) for x in xs], color=color, lw=1.6, label=f"{s.label} fit: {_rate_text(fit)}")
        if project_years > 0:
            future = np.linspace(fit.end_year, fit.end_year + project_years, 50)
            bands = [fit.projection_band(x) for x in future]
            ax.plot(future, [b.best for b in bands], color=color, lw=1.4, ls="--")
            ax.fill_between(future, [b.low for b in bands], [b.high for b in bands], color=color, alpha=0.15,
                            label=f"{s.label} projection, {int(fit.confidence * 100)}% slope interval")
    for point in measured:
        ax.scatter([point.year], [point.value], marker="*", s=220, color="crimson", edgecolor="black",
                   zorder=5, label=f"measured: {point.label}")
    ax.set_yscale("log")
    if annotate:
        _label_points(fig, ax, [(x, y, n) for s in series for x, y, n in zip(s.years, s.values, s.names, strict=False)])
    ax.set_xlabel("year")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.4)
    ax.grid(True, which="minor", axis="y", alpha=0.12)
    ax.legend(fontsize=7.5, loc="best", framealpha=0.9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out

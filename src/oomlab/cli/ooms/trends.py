"""`oomlab ooms fit|plot`: trendlines fitted to the sourced tables (count, project, rate: `counting`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from oomlab.cli.common import console, db_option, print_json, run_totals
from oomlab.cli.ooms.common import (
    DataOpt,
    JsonOpt,
    app,
    command_pace,
    figure,
    ooms_options,
    reference_data,
    today_year,
    wants_json,
)
from oomlab.errors import ConfigError, FitError
from oomlab.forecast.measured import measured_figures
from oomlab.forecast.pace import finite
from oomlab.forecast.reference import ReferenceData
from oomlab.forecast.trends import TrendFit, fit_log_linear

# ---------------------------------------------------------------- fit


def _fit(name: str, years: list[float], values: list[float], confidence: float) -> TrendFit:
    try:
        return fit_log_linear(years, values, confidence)
    except FitError as e:
        raise FitError(f"{name}: {e}") from None


def _series(ref: ReferenceData, what: str, capabilities: list[str] | None, since: float | None) -> list[tuple[str, list[float], list[float], list[str]]]:
    if what == "compute":
        rows = [r for r in sorted(ref.training, key=lambda r: r.year) if since is None or r.year >= since]
        return [("training compute", [r.year for r in rows], [r.flop for r in rows], [r.model for r in rows])]
    if what == "prices":
        names = capabilities or ref.capabilities()
        out = []
        for c in names:
            rows = [p for p in ref.price_series(c) if since is None or p.year >= since]
            out.append((c, [p.year for p in rows], [p.usd_per_million_tokens for p in rows], [p.model for p in rows]))
        return out
    raise ConfigError(f"unknown series '{what}'; choose prices or compute")


@app.command()
def fit(
    ctx: typer.Context,
    what: Annotated[str, typer.Argument(help="prices ($/M tokens at fixed capability) or compute (training FLOP).")] = "prices",
    capability: Annotated[list[str] | None, typer.Option(help="Capability level(s) to fit; default all. Repeatable.")] = None,
    since: Annotated[float | None, typer.Option(help="Only points from this year on.")] = None,
    confidence: Annotated[float, typer.Option(help="Confidence level of the rate interval.")] = 0.9,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Log-linear fit of dated prices or compute: rate per year (× and OOMs) with an interval."""
    ref = reference_data(ctx, data)
    fits: list[tuple[str, TrendFit]] = []
    for name, years, values, _ in _series(ref, what, capability, since):
        fits.append((name, _fit(name, years, values, confidence)))
    kind = "price_decline" if what == "prices" else "physical_compute"
    sources = ref.trends_of(kind)
    if wants_json(ctx, json_out):
        print_json({"series": what, "fits": [{"name": n, **f.as_dict()} for n, f in fits],
                    "reference_rates": [{"id": t.id, "low": t.low, "best": t.best, "high": t.high,
                                         "source": t.source} for t in sources]})
        return
    table = Table(title=f"Log-linear fits: {what} ({int(confidence * 100)}% interval on the rate)")
    for name in ("series", "n", "years", "×/yr", "OOMs/yr [interval]", "months per 2×", "R²"):
        table.add_column(escape(name), no_wrap=name in ("years", "×/yr"))
    for name, f in fits:
        interval = "" if f.ooms_per_year_low is None else f" [{f.ooms_per_year_low:.2f}, {f.ooms_per_year_high:.2f}]"
        table.add_row(escape(name), str(f.n), f"{f.start_year:.1f}–{f.end_year:.1f}",
                      f"{f.fold_per_year:.3g}× {'up' if f.direction == 'growth' else 'down'}", f"{f.ooms_per_year:+.2f}{interval}",
                      f"{f.months_per_halving_or_doubling:.1f}", figure(f.r_squared))
    console.print(table)
    ref_table = Table(title=f"Sourced {kind} rates, OOMs/yr", show_lines=False)
    for name in ("id", "low", "best", "high", "source"):
        ref_table.add_column(name, overflow="fold", style="dim" if name == "source" else None)
    for t in sources:
        ref_table.add_row(escape(t.id), f"{t.low:.2f}", f"{t.best:.2f}", f"{t.high:.2f}", escape(t.source))
    console.print(ref_table)


# ---------------------------------------------------------------- plot


@app.command()
def plot(
    ctx: typer.Context,
    what: Annotated[str, typer.Argument(help="prices or compute.")] = "prices",
    out: Annotated[Path, typer.Option(help="PNG file to write.")] = Path("ooms-trend.png"),
    years: Annotated[float, typer.Option(help="Years to project past the last point.")] = 3.0,
    capability: Annotated[list[str] | None, typer.Option(help="Capability level(s); default those with 3+ points.")] = None,
    since: Annotated[float | None, typer.Option(help="Only points from this year on.")] = None,
    confidence: Annotated[float, typer.Option(help="Confidence level of the projection band.")] = 0.9,
    run: Annotated[str | None, typer.Option("--run", help="Add this run's measured $/M tokens (prices chart).")] = None,
    db: Path | None = db_option("The SQLite database a sweep wrote (default: the group's --db).", default=None),
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The trendline chart: log-y, data points, fitted line, projection band, measured points."""
    from oomlab.forecast.plot import MeasuredPoint, Series, plot_trends  # matplotlib only when plotting

    opts = ooms_options(ctx)
    if finite("--years", years) < 0:
        raise ConfigError(f"--years must be zero or more, got {years:g}")
    ref = reference_data(ctx, data)
    raw = _series(ref, what, capability, since)
    if what == "prices" and not capability:
        raw = [s for s in raw if len(s[1]) >= 3] or raw
    series = [Series(name, tuple(x), tuple(y), tuple(n), _fit(name, x, y, confidence)) for name, x, y, n in raw]
    run_id = run or opts.run
    measured: list[MeasuredPoint] = []
    if run_id is not None:
        if what != "prices":
            raise ConfigError("--run adds a measured $/M-tokens point; it applies to `plot prices`")
        run_id, totals = run_totals(db or opts.db, run_id)  # an id, a unique prefix of one, or 'latest'
        figures = measured_figures(totals, command_pace(ctx))  # only its $/M tokens is drawn
        if figures.usd_per_million_tokens:
            measured.append(MeasuredPoint(today_year(), figures.usd_per_million_tokens, f"run {run_id} ({figures.model_id})"))
    title, ylabel = {
        "prices": ("Price per million tokens at fixed capability", "USD per million tokens (log)"),
        "compute": ("Training compute of notable models", "training compute, FLOP (log)"),
    }[what]
    path = plot_trends(series, out, title=title, ylabel=ylabel, project_years=years, measured=measured,
                       annotate=what == "compute")
    if wants_json(ctx, json_out):
        print_json({"path": str(path), "series": [{"name": s.label, **s.fit.as_dict()} for s in series if s.fit],
                    "measured": [{"year": m.year, "value": m.value, "label": m.label} for m in measured]})
        return
    console.print(f"wrote {path}")

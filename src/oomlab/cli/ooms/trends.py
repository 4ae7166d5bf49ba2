"""`oomlab ooms count|project|fit|plot`: trendlines from the sourced tables."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from oomlab.cli.ooms.common import (
    DataOpt,
    JsonOpt,
    _band,
    _console,
    _emit_json,
    _flop,
    _g,
    _load_totals,
    _options,
    _reference,
    _today,
    _wants_json,
    app,
)
from oomlab.errors import ConfigError, FitError
from oomlab.forecast.counting import (
    ZERO,
    Band,
    count_ooms,
    effective_ooms,
    multiplier_ooms,
    project,
    rate_band,
    year_reaching,
)
from oomlab.forecast.measured import measured_figures
from oomlab.forecast.reference import ReferenceData
from oomlab.forecast.trends import TrendFit, fit_log_linear

# ---------------------------------------------------------------- count


def _point(ref: ReferenceData, text: str) -> tuple[str, Band, float | None]:
    """A model name from the training table, or a FLOP count typed as a number."""
    try:
        value = float(text)
    except ValueError:
        row = ref.training_run(text)
        return row.model, Band(row.flop_low, row.flop, row.flop_high), row.year
    if value <= 0:
        raise ConfigError(f"a compute figure must be positive, got {text}")
    return text, Band.point(value), None


@app.command()
def count(
    ctx: typer.Context,
    start: Annotated[str | None, typer.Argument(help="Model name (see `count` alone) or FLOP, e.g. GPT-2 or 4e21.")] = None,
    end: Annotated[str | None, typer.Argument(help="Model name or FLOP, e.g. GPT-4.")] = None,
    effective: Annotated[bool, typer.Option(help="Add algorithmic progress over the years between, for effective compute.")] = False,
    algorithms: Annotated[str, typer.Option(help="Trend row giving the best algorithmic rate.")] = "essay-algorithms",
    unhobbling: Annotated[list[str] | None, typer.Option(help="Multiplier rows to add (e.g. chain_of_thought). Repeatable.")] = None,
    sources: Annotated[bool, typer.Option(help="Show each row's source in the table.")] = False,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """OOMs of training compute between two points; alone, the table of notable models."""
    ref = _reference(ctx, data)
    as_json = _wants_json(ctx, json_out)
    if start is None:
        models = sorted(ref.training, key=lambda r: r.year)
        base = models[0].flop
        if as_json:
            _emit_json([{"model": m.model, "date": m.date, "flop": m.flop, "flop_low": m.flop_low,
                         "flop_high": m.flop_high, "ooms_above_first": math.log10(m.flop / base),
                         "source": m.source} for m in models])
            return
        table = Table(title=f"Training compute of notable models (OOMs above {models[0].model})")
        for name in ("model", "date", "FLOP", "OOMs", *(["source"] if sources else [])):
            table.add_column(name, overflow="fold", style="dim" if name == "source" else None)
        for m in models:
            table.add_row(escape(m.model), m.date, _band(Band(m.flop_low, m.flop, m.flop_high), _flop),
                          f"{math.log10(m.flop / base):.2f}", *([escape(m.source)] if sources else []))
        console = _console()
        console.print(table)
        if not sources:
            console.print("[dim]sources: add --sources, or --json[/]")
        return
    if end is None:
        raise ConfigError("give two points to count between, e.g. `oomlab ooms count GPT-2 GPT-4`")
    a_name, a, a_year = _point(ref, start)
    b_name, b, b_year = _point(ref, end)
    physical = count_ooms(a, b)
    years = None if a_year is None or b_year is None else b_year - a_year
    result: dict[str, Any] = {"start": a_name, "end": b_name, "start_flop": a.as_dict(), "end_flop": b.as_dict(),
                              "physical_ooms": physical.as_dict(), "years": years,
                              "physical_ooms_per_year": None if not years else physical.best / years}
    total = physical
    if effective or unhobbling:
        if years is None or years <= 0:
            raise ConfigError("--effective and --unhobbling need two dated models from the table, the later one second")
        algo_rate = rate_band(ref.trends_of("algorithmic_efficiency"), ref.trend(algorithms))
        gains = [multiplier_ooms(ref.multiplier(m)) for m in (unhobbling or [])]
        total = effective_ooms(physical, algo_rate.scaled(years), gains)
        result.update({"algorithmic_ooms": algo_rate.scaled(years).as_dict(),
                       "unhobbling_ooms": sum(gains, ZERO).as_dict(), "effective_ooms": total.as_dict()})
    if _wants_json(ctx, json_out):
        _emit_json(result)
        return
    table = Table(title=escape(f"Counting the OOMs: {a_name} → {b_name}"))
    table.add_column("quantity")
    table.add_column(escape("best [low–high]"))
    table.add_row("start FLOP", _band(a, _flop))
    table.add_row("end FLOP", _band(b, _flop))
    table.add_row("physical compute, OOMs", _band(physical, lambda x: f"{x:.2f}"))
    if years:
        table.add_row("years apart", f"{years:.1f}")
        table.add_row("OOMs per year", f"{physical.best / years:.2f}")
    if "effective_ooms" in result:
        table.add_row("algorithmic efficiency, OOMs", _band(Band(**result["algorithmic_ooms"]), lambda x: f"{x:.2f}"))
        table.add_row("unhobbling, OOMs", _band(Band(**result["unhobbling_ooms"]), lambda x: f"{x:.2f}"))
        table.add_row("[bold]effective compute, OOMs[/]", _band(total, lambda x: f"{x:.2f}"))
    _console().print(table)


# ---------------------------------------------------------------- project


@app.command("project")
def project_cmd(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--from", help="Model whose date and FLOP the projection starts from.")] = "GPT-4",
    start_year: Annotated[float | None, typer.Option(help="Start year instead of a model's date.")] = None,
    base_flop: Annotated[float | None, typer.Option(help="Start FLOP instead of a model's.")] = None,
    years: Annotated[float, typer.Option(help="Years to project forward.")] = 4.0,
    compute: Annotated[str, typer.Option(help="Trend row giving the best physical-compute rate.")] = "essay-compute",
    algorithms: Annotated[str, typer.Option(help="Trend row giving the best algorithmic rate.")] = "essay-algorithms",
    unhobbling: Annotated[list[str] | None, typer.Option(help="One-time multiplier rows (chain_of_thought, scaffolding_tools). Repeatable.")] = None,
    reach: Annotated[float | None, typer.Option(help="Report the year effective compute reaches this many start-year FLOP.")] = None,
    reach_ooms: Annotated[float | None, typer.Option(help="Report the year effective compute is this many OOMs above the start.")] = None,
    step: Annotated[float, typer.Option(help="Years between rows.")] = 1.0,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Project effective compute forward: physical × algorithmic × unhobbling, low/best/high.

    Best rates come from the chosen trend rows; low and high span every sourced row
    of the same kind, and bands add end to end, as the essay's ranges do.
    """
    ref = _reference(ctx, data)
    model_year, model_flop = None, None
    if start_year is None or base_flop is None:
        row = ref.training_run(start)
        model_year, model_flop = row.year, row.flop
    year0 = start_year if start_year is not None else model_year
    flop0 = base_flop if base_flop is not None else model_flop
    assert year0 is not None and flop0 is not None
    if flop0 <= 0:
        raise ConfigError(f"--base-flop must be positive, got {flop0}")
    phys_row, algo_row = ref.trend(compute), ref.trend(algorithms)
    for row, kind in ((phys_row, "physical_compute"), (algo_row, "algorithmic_efficiency")):
        if row.kind != kind:
            raise ConfigError(f"trend '{row.id}' is a {row.kind} rate; this option needs a {kind} rate")
    phys = rate_band(ref.trends_of("physical_compute"), phys_row)
    algo = rate_band(ref.trends_of("algorithmic_efficiency"), algo_row)
    gains = [multiplier_ooms(ref.multiplier(m)) for m in (unhobbling or [])]
    points = project(year0, years, phys, algo, gains, step)
    target = reach_ooms
    if reach is not None:
        if reach <= 0:
            raise ConfigError(f"--reach must be a positive FLOP count, got {reach}")
        target = math.log10(reach / flop0)
    when = None if target is None else year_reaching(target, year0, phys + algo, sum(gains, ZERO))
    if _wants_json(ctx, json_out):
        _emit_json({"start_year": year0, "start_flop": flop0, "physical_rate": phys.as_dict(),
                    "algorithmic_rate": algo.as_dict(), "unhobbling": list(unhobbling or []),
                    "points": [{**p.as_dict(), "effective_flop": {k: flop0 * 10**v for k, v in p.effective.as_dict().items()}}
                               for p in points],
                    "target_ooms": target, "reached": None if when is None else when.as_dict()})
        return
    ooms_fmt = lambda x: f"{x:.2f}"  # noqa: E731
    table = Table(title=escape(f"Effective compute from {year0:.1f} ({_flop(flop0)} FLOP): OOMs gained, best [low–high]"))
    for name in ("year", "physical", "algorithmic", "unhobbling", "effective OOMs", "effective FLOP"):
        table.add_column(name, overflow="fold")
    for p in points:
        eff_flop = Band(*(flop0 * 10**v for v in (p.effective.low, p.effective.best, p.effective.high)))
        table.add_row(f"{p.year:.1f}", _band(p.physical, ooms_fmt), _band(p.algorithmic, ooms_fmt),
                      _band(p.unhobbling, ooms_fmt), f"[bold]{_band(p.effective, ooms_fmt)}[/]", _band(eff_flop, _flop))
    console = _console()
    console.print(table)
    console.print(f"rates, OOMs/yr: physical {_band(phys)} (best: {phys_row.id}); "
                  f"algorithmic {_band(algo)} (best: {algo_row.id})")
    if when is not None:
        fmt = lambda y: "never" if y is None else f"{y:.1f}"  # noqa: E731
        console.print(f"{target:.2f} OOMs above the start is reached in {fmt(when.best)} "
                      f"(earliest {fmt(when.earliest)}, latest {fmt(when.latest)}).")


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
    ref = _reference(ctx, data)
    fits: list[tuple[str, TrendFit]] = []
    for name, years, values, _ in _series(ref, what, capability, since):
        fits.append((name, _fit(name, years, values, confidence)))
    kind = "price_decline" if what == "prices" else "physical_compute"
    sources = ref.trends_of(kind)
    if _wants_json(ctx, json_out):
        _emit_json({"series": what, "fits": [{"name": n, **f.as_dict()} for n, f in fits],
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
                      f"{f.months_per_halving_or_doubling:.1f}", _g(f.r_squared))
    console = _console()
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
    db: Annotated[Path | None, typer.Option("--db", help="The SQLite database a sweep wrote.")] = None,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The trendline chart: log-y, data points, fitted line, projection band, measured points."""
    from oomlab.forecast.plot import MeasuredPoint, Series, plot_trends  # matplotlib only when plotting

    opts = _options(ctx)
    ref = _reference(ctx, data)
    raw = _series(ref, what, capability, since)
    if what == "prices" and not capability:
        raw = [s for s in raw if len(s[1]) >= 3] or raw
    series = [Series(name, tuple(x), tuple(y), tuple(n), _fit(name, x, y, confidence)) for name, x, y, n in raw]
    run_id = run or opts.run
    measured: list[MeasuredPoint] = []
    if run_id is not None:
        if what != "prices":
            raise ConfigError("--run adds a measured $/M-tokens point; it applies to `plot prices`")
        figures = measured_figures(_load_totals(db or opts.db, run_id), opts.human_tokens_per_second)
        if figures.usd_per_million_tokens:
            measured.append(MeasuredPoint(_today(), figures.usd_per_million_tokens, f"run {run_id} ({figures.model_id})"))
    title, ylabel = {
        "prices": ("Price per million tokens at fixed capability", "USD per million tokens (log)"),
        "compute": ("Training compute of notable models", "training compute, FLOP (log)"),
    }[what]
    path = plot_trends(series, out, title=title, ylabel=ylabel, project_years=years, measured=measured,
                       annotate=what == "compute")
    if _wants_json(ctx, json_out):
        _emit_json({"path": str(path), "series": [{"name": s.label, **s.fit.as_dict()} for s in series if s.fit],
                    "measured": [{"year": m.year, "value": m.value, "label": m.label} for m in measured]})
        return
    _console().print(f"wrote {path}")

"""`oomlab ooms`: count the OOMs — trendlines, projections, unit conversions, measured runs."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from oomlab.errors import ConfigError, FitError
from oomlab.forecast import conversions as conv
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
from oomlab.forecast.measured import MeasuredFigures, measured_figures
from oomlab.forecast.reference import ReferenceData, decimal_year, load_reference
from oomlab.forecast.trends import TrendFit, fit_log_linear

app = typer.Typer(
    name="ooms",
    help=(
        "Count the OOMs: orders of magnitude of compute, algorithms and price from sourced data "
        "(Aschenbrenner 2024, 'Situational Awareness', ch. I), and a measured run beside them.\n\n"
        "count GPT-2 GPT-4: OOMs of training compute between two models. "
        "project --years 4: effective compute, low/best/high. "
        "fit prices: price decline per year at fixed capability. "
        "convert fleet: watts per human-equivalent. "
        "plot prices --out p.png: the trendline chart. "
        "--run RUN_ID: a run's J/token, $/M tokens, tokens/s and watts."
    ),
    no_args_is_help=True,
)
convert_app = typer.Typer(
    name="convert",
    help="Unit conversions: tokens ↔ working time, J/token ↔ watts, fleets, prices, clusters.",
    no_args_is_help=True,
)
app.add_typer(convert_app, name="convert")

_META_KEY = "oomlab.ooms"

DataOpt = Annotated[
    list[Path] | None,
    typer.Option("--data", help="Extra reference rows (CSV; the header names the table). Repeatable."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@dataclass
class _Options:
    run: str | None = None
    db: Path = Path("oomlab.db")
    data: list[Path] = field(default_factory=list)
    json: bool = False
    human_tokens_per_second: float = conv.HUMAN_TOKENS_PER_SECOND


def _options(ctx: typer.Context) -> _Options:
    return ctx.meta.get(_META_KEY) or _Options()


def _reference(ctx: typer.Context, data: list[Path] | None) -> ReferenceData:
    return load_reference([*_options(ctx).data, *(data or [])])


def _wants_json(ctx: typer.Context, flag: bool) -> bool:
    return flag or _options(ctx).json


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _emit_json(payload: Any) -> None:
    typer.echo(json.dumps(_clean(payload), indent=2, ensure_ascii=False))


def _console() -> Console:
    return Console()


def _g(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}g}"


def _flop(x: float) -> str:
    return f"{x:.2g}".replace("e+", "e")


def _band(b: Band, fmt: Any = _g) -> str:
    if math.isclose(b.low, b.high, rel_tol=1e-9, abs_tol=1e-12):
        return fmt(b.best)
    return f"{fmt(b.best)} [{fmt(b.low)}–{fmt(b.high)}]"


def _today() -> float:
    return decimal_year(dt.date.today().isoformat())


# ---------------------------------------------------------------- measured run (callback)


@app.callback(invoke_without_command=True)
def ooms(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option("--run", help="A run id: show its measured figures beside the reference ones.")] = None,
    db: Annotated[Path, typer.Option("--db", help="The SQLite database a sweep wrote.")] = Path("oomlab.db"),
    data: DataOpt = None,
    json_out: JsonOpt = False,
    human_tokens_per_second: Annotated[
        float, typer.Option(help="A human's pace for human-equivalent watts (seed estimate: 1 token/s).")
    ] = conv.HUMAN_TOKENS_PER_SECOND,
) -> None:
    """Count the OOMs; with --run and no command, show a measured run beside the reference figures."""
    if human_tokens_per_second <= 0:
        raise ConfigError(f"--human-tokens-per-second must be positive, got {human_tokens_per_second}")
    ctx.meta[_META_KEY] = _Options(run, db, list(data or []), json_out, human_tokens_per_second)
    if ctx.invoked_subcommand is not None:
        return
    if run is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    figures = measured_figures(_load_totals(db, run), human_tokens_per_second)
    ref = _reference(ctx, None)
    rows = _reference_rows(ref, human_tokens_per_second)
    if json_out:
        _emit_json({"run_id": run, "run": figures.as_dict(), "reference": rows,
                    "human_tokens_per_second": human_tokens_per_second})
        return
    _print_measured(run, figures, rows, human_tokens_per_second)


def _load_totals(db: Path, run_id: str) -> Any:
    if not Path(db).is_file():
        raise ConfigError(f"no database at {db}; pass --db with the file a sweep wrote")
    from oomlab.store import Store  # lazy: only --run needs the database

    store = Store(db)
    try:
        return store.run_totals(run_id)
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()


def _reference_rows(ref: ReferenceData, human_tps: float) -> list[dict[str, Any]]:
    """Published and seed figures in the same units as a measured run."""
    rows: list[dict[str, Any]] = []
    for e in ref.energy:
        rows.append({"figure": e.label, "joules_per_token": e.joules_per_token,
                     "human_equivalent_watts": conv.human_equivalent_watts(e.joules_per_token, human_tps),
                     "tokens_per_second": None, "usd_per_million_tokens": None,
                     "energy": "measured" if e.measured else "estimated", "source": e.source})
    fleet = conv.fleet_estimate(human_tokens_per_second=human_tps)
    rows.append({"figure": f"seed: {conv.SEED_GPUS} GPUs × {conv.SEED_WATTS_PER_GPU:g} W, {conv.SEED_STREAMS} streams "
                           f"at {conv.SEED_SPEED_VS_HUMAN:g}× human",
                 "joules_per_token": fleet.joules_per_token,
                 "human_equivalent_watts": conv.human_equivalent_watts(fleet.joules_per_token, human_tps),
                 "tokens_per_second": conv.SEED_SPEED_VS_HUMAN * human_tps, "usd_per_million_tokens": None,
                 "energy": "estimated", "source": "seed estimate (issue #5)"})
    price = conv.energy_from_price()
    rows.append({"figure": f"seed: ${conv.SEED_USD_PER_GPU_HOUR:g}/GPU-h at {conv.SEED_WATTS_PER_GPU:g} W, "
                           f"${conv.SEED_USD_PER_MILLION_TOKENS:g}/M tokens",
                 "joules_per_token": price.joules_per_token,
                 "human_equivalent_watts": conv.human_equivalent_watts(price.joules_per_token, human_tps),
                 "tokens_per_second": None, "usd_per_million_tokens": price.usd_per_million_tokens,
                 "energy": "estimated",
                 "source": f"seed estimate; {price.human_equivalent_watts:.2g} W at "
                           f"{price.human_hours_per_million_tokens:g} human hours per million tokens"})
    rows.append({"figure": f"human brain, {conv.HUMAN_BRAIN_WATTS:g} W at {human_tps:g} token/s",
                 "joules_per_token": conv.joules_per_token_at(conv.HUMAN_BRAIN_WATTS, human_tps),
                 "human_equivalent_watts": conv.HUMAN_BRAIN_WATTS, "tokens_per_second": human_tps,
                 "usd_per_million_tokens": None, "energy": "estimated",
                 "source": "conventional ≈20 W; seed essay 10–30 W"})
    for capability in ref.capabilities():
        latest = ref.price_series(capability)[-1]
        rows.append({"figure": f"API price, {capability} level ({latest.model}, {latest.date})",
                     "joules_per_token": None, "human_equivalent_watts": None, "tokens_per_second": None,
                     "usd_per_million_tokens": latest.usd_per_million_tokens, "energy": "—",
                     "source": latest.source})
    return rows


def _print_measured(run: str, f: MeasuredFigures, rows: list[dict[str, Any]], human_tps: float) -> None:
    table = Table(title=f"Run {escape(run)} beside the reference figures (human pace {human_tps:g} token/s)")
    table.add_column("figure", overflow="fold", ratio=1)
    for name in ("J/token", "W at human pace", "tokens/s", "$/M tokens"):
        table.add_column(name, overflow="fold", justify="right")
    table.add_column("energy", no_wrap=True)
    table.add_column("ref", no_wrap=True)
    table.add_row(f"[bold]this run[/] ({escape(f.model_id or 'model ?')}, {f.samples} samples)", _g(f.joules_per_token),
                  _g(f.human_equivalent_watts), _g(f.tokens_per_second), _g(f.usd_per_million_tokens),
                  f"[bold]{f.energy_label}[/]", "")
    sources: list[str] = []
    for r in rows:
        if r["source"] not in sources:
            sources.append(r["source"])
        table.add_row(escape(r["figure"]), _g(r["joules_per_token"]), _g(r["human_equivalent_watts"]),
                      _g(r["tokens_per_second"]), _g(r["usd_per_million_tokens"]), r["energy"],
                      str(sources.index(r["source"]) + 1))
    console = _console()
    console.print(table)
    for i, source in enumerate(sources, 1):
        console.print(f"[dim]{i}. {escape(source)}[/]")
    console.print(f"{f.completion_tokens:g} completion tokens = {conv.tokens_to_human_time(f.completion_tokens).phrase()} "
                  f"of human work at {conv.TOKENS_PER_HUMAN_MINUTE:g} tokens/minute.")
    if not f.energy_measured:
        console.print("[yellow]This run's energy is an estimate from a configured device power, not a meter reading.[/]")


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


# ---------------------------------------------------------------- convert


@convert_app.command("tokens")
def convert_tokens(
    ctx: typer.Context,
    tokens: Annotated[float | None, typer.Argument(help="Thinking tokens; alone, the essay's table.")] = None,
    hours: Annotated[float | None, typer.Option(help="Working hours to turn into tokens instead.")] = None,
    tokens_per_minute: Annotated[float, typer.Option(help="A human's pace (SA ch. I: ~100).")] = conv.TOKENS_PER_HUMAN_MINUTE,
    json_out: JsonOpt = False,
) -> None:
    """Tokens ↔ human working time at 100 tokens/minute, 8-hour days, 40-hour weeks (SA ch. I)."""
    as_json = _wants_json(ctx, json_out)
    if hours is not None:
        n = conv.human_time_to_tokens(hours, tokens_per_minute)
        if as_json:
            _emit_json({"hours": hours, "tokens": n, "tokens_per_minute": tokens_per_minute})
        else:
            _console().print(f"{hours:g} working hours ≈ {n:,.0f} tokens at {tokens_per_minute:g} tokens/minute")
        return
    if tokens is not None:
        t = conv.tokens_to_human_time(tokens, tokens_per_minute)
        if as_json:
            _emit_json({**t.__dict__, "phrase": t.phrase()})
        else:
            _console().print(f"{tokens:,.0f} tokens ≈ {t.phrase()} of human work")
        return
    rows = conv.thinking_time_table(tokens_per_minute)
    if as_json:
        _emit_json([{"order": r.order, "tokens": r.tokens, "essay_says": r.essay_says,
                     "hours": r.human_time.hours, "phrase": r.human_time.phrase()} for r in rows])
        return
    table = Table(title=f"Thinking tokens as human working time ({tokens_per_minute:g} tokens/minute, 8 h days, 40 h weeks)")
    for name in ("tokens", "e.g.", "essay says", "computed"):
        table.add_column(name)
    for r in rows:
        table.add_row(r.order, f"{r.tokens:,.0f}", r.essay_says, r.human_time.phrase())
    _console().print(table)


@convert_app.command("watts")
def convert_watts(
    ctx: typer.Context,
    j_per_token: Annotated[float | None, typer.Option("--j-per-token", help="Energy per token, J.")] = None,
    watts: Annotated[float | None, typer.Option(help="A power budget, W, to turn into J/token instead.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """J/token ↔ human-equivalent watts: the power to produce tokens at a human's pace."""
    tps = _options(ctx).human_tokens_per_second
    if (j_per_token is None) == (watts is None):
        raise ConfigError("give exactly one of --j-per-token or --watts")
    if j_per_token is not None:
        result = {"joules_per_token": j_per_token, "human_equivalent_watts": conv.human_equivalent_watts(j_per_token, tps)}
    else:
        assert watts is not None
        result = {"human_equivalent_watts": watts, "joules_per_token": conv.joules_per_token_at(watts, tps)}
    result["human_tokens_per_second"] = tps
    result["brain_watts"] = conv.HUMAN_BRAIN_WATTS
    if _wants_json(ctx, json_out):
        _emit_json(result)
        return
    _console().print(f"{_g(result['joules_per_token'])} J/token at {tps:g} token/s = "
                     f"{_g(result['human_equivalent_watts'])} W per human-equivalent "
                     f"(a brain: ~{conv.HUMAN_BRAIN_WATTS:g} W)")


def _quantity(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool) or not isinstance(v, float | int):
        return escape(str(v))
    if float(v).is_integer() and abs(v) < 1e13:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def _print_dict(title: str, values: dict[str, Any]) -> None:
    table = Table(title=title)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for k, v in values.items():
        table.add_row(k.replace("_", " "), _quantity(v))
    _console().print(table)


@convert_app.command("fleet")
def convert_fleet(
    ctx: typer.Context,
    gpus: Annotated[float, typer.Option(help="GPUs serving.")] = conv.SEED_GPUS,
    watts: Annotated[float, typer.Option(help="All-in watts per GPU.")] = conv.SEED_WATTS_PER_GPU,
    streams: Annotated[float, typer.Option(help="Concurrent generation streams.")] = conv.SEED_STREAMS,
    speed: Annotated[float, typer.Option(help="Each stream's speed relative to a human.")] = conv.SEED_SPEED_VS_HUMAN,
    json_out: JsonOpt = False,
) -> None:
    """A serving fleet in human terms (defaults: the seed estimate, about 1 W per human-equivalent)."""
    est = conv.fleet_estimate(gpus, watts, streams, speed, _options(ctx).human_tokens_per_second)
    if _wants_json(ctx, json_out):
        _emit_json(est.as_dict())
        return
    _print_dict("Serving fleet in human-equivalents", est.as_dict())


@convert_app.command("price-energy")
def convert_price_energy(
    ctx: typer.Context,
    usd_per_gpu_hour: Annotated[float, typer.Option(help="Rental price per GPU-hour.")] = conv.SEED_USD_PER_GPU_HOUR,
    watts: Annotated[float, typer.Option(help="All-in watts per GPU.")] = conv.SEED_WATTS_PER_GPU,
    usd_per_million: Annotated[float, typer.Option(help="Price per million tokens.")] = conv.SEED_USD_PER_MILLION_TOKENS,
    human_hours_per_million: Annotated[float, typer.Option(help="Human working hours a million tokens replace.")] = conv.SEED_HUMAN_HOURS_PER_MILLION_TOKENS,
    json_out: JsonOpt = False,
) -> None:
    """Energy behind a token price: GPU-hours per M tokens × watts, per human hour replaced."""
    est = conv.energy_from_price(usd_per_gpu_hour, watts, usd_per_million, human_hours_per_million)
    if _wants_json(ctx, json_out):
        _emit_json(est.as_dict())
        return
    _print_dict("Energy implied by a token price", est.as_dict())


@convert_app.command("cost")
def convert_cost(
    ctx: typer.Context,
    usd_per_gpu_hour: Annotated[float, typer.Option(help="Rental price per GPU-hour.")] = conv.SEED_USD_PER_GPU_HOUR,
    tokens_per_second: Annotated[float | None, typer.Option(help="Throughput per GPU, tokens/s.")] = None,
    usd_per_million: Annotated[float | None, typer.Option(help="Price per M tokens, to get the throughput it implies.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Cost per million tokens from $/GPU-hour and throughput (or the throughput a price implies)."""
    if (tokens_per_second is None) == (usd_per_million is None):
        raise ConfigError("give exactly one of --tokens-per-second or --usd-per-million")
    if tokens_per_second is not None:
        result = {"usd_per_gpu_hour": usd_per_gpu_hour, "tokens_per_second": tokens_per_second,
                  "usd_per_million_tokens": conv.usd_per_million_tokens(usd_per_gpu_hour, tokens_per_second)}
    else:
        assert usd_per_million is not None
        result = {"usd_per_gpu_hour": usd_per_gpu_hour, "usd_per_million_tokens": usd_per_million,
                  "tokens_per_second": conv.tokens_per_second_for_price(usd_per_gpu_hour, usd_per_million)}
    if _wants_json(ctx, json_out):
        _emit_json(result)
        return
    _print_dict("Serving cost", result)


@convert_app.command("cluster")
def convert_cluster(
    ctx: typer.Context,
    gpus: Annotated[float, typer.Option(help="Accelerators in the cluster.")] = 100_000,
    accelerator: Annotated[str, typer.Option(help="Hardware row for unit price, power and FLOP/s.")] = "H100 SXM",
    unit_usd: Annotated[float | None, typer.Option(help="Override the unit price.")] = None,
    all_in_watts: Annotated[float | None, typer.Option(help="Override datacenter watts per GPU.")] = None,
    gpu_share: Annotated[float, typer.Option(help="GPUs' share of cluster cost (SA IIIa: about half).")] = conv.GPU_SHARE_OF_CLUSTER_COST,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Cluster size → capex and megawatts (Situational Awareness IIIa's arithmetic)."""
    hw = _reference(ctx, data).accelerator(accelerator)
    price = unit_usd if unit_usd is not None else hw.unit_usd
    power = all_in_watts if all_in_watts is not None else hw.all_in_watts
    if price is None:
        raise ConfigError(f"{hw.accelerator} has no sourced unit price; pass --unit-usd")
    if power is None:
        raise ConfigError(f"{hw.accelerator} has no sourced all-in power; pass --all-in-watts (TDP is {hw.tdp_watts:g} W)")
    est = conv.cluster_estimate(gpus, price, power, gpu_share, hw.peak_flops)
    if _wants_json(ctx, json_out):
        _emit_json({"accelerator": hw.accelerator, **est.as_dict(), "source": hw.source})
        return
    _print_dict(f"Cluster of {gpus:,.0f} × {hw.accelerator}", est.as_dict())
    _console().print(f"[dim]source: {hw.source}[/]")

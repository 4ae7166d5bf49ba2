"""`oomlab ooms count|project|rate`: the essay's arithmetic, from table rows or from numbers typed in.

Every rate a source states can be typed as a number (`--compute-rate 0.5`,
`--algo-rate 0.3:0.7`, `--unhobbling-factor 10`), so no calculation needs a CSV.
A rate row of the wrong kind (a price decline where algorithmic efficiency belongs)
is refused. Ranges are the envelope of the inputs' ranges, added end to end, and
every table says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from oomlab.cli.common import console, print_json
from oomlab.cli.ooms.common import (
    DataOpt,
    JsonOpt,
    app,
    band_text,
    json_factor,
    parse_year,
    reference_data,
    wants_json,
)
from oomlab.errors import ConfigError
from oomlab.forecast.counting import (
    ZERO,
    Band,
    Change,
    count_ooms,
    effective_ooms,
    log10_after,
    multiplier_ooms,
    parse_band,
    project,
    rate_band,
    year_reaching,
)
from oomlab.forecast.pace import finite, finite_positive
from oomlab.forecast.reference import ReferenceData
from oomlab.numbers import factor, flops

ENVELOPE = ("[low–high]: the ends of every input's range added together (all lows, all highs) — "
            "the widest range the sources give, not a probability interval")

ComputeRateOpt = Annotated[str | None, typer.Option(
    "--compute-rate", help="Physical-compute growth, OOM/yr, typed: 0.5, LOW:HIGH or LOW:BEST:HIGH (replaces --compute).")]
AlgoRateOpt = Annotated[str | None, typer.Option(
    "--algo-rate", help="Algorithmic efficiency, OOM/yr, typed: 0.5, LOW:HIGH or LOW:BEST:HIGH (replaces --algorithms).")]
UnhobblingOpt = Annotated[list[str] | None, typer.Option(
    help="One-time multiplier rows to add (chain_of_thought, scaffolding_tools). Repeatable.")]
UnhobblingFactorOpt = Annotated[list[str] | None, typer.Option(
    "--unhobbling-factor", help="A one-time multiplier typed as a factor: 10, or 5:30. Repeatable.")]


def _ooms_text(x: float) -> str:
    return f"{x:.2f}"


def _rate(ref: ReferenceData, kind: str, row_id: str, typed: str | None, flag: str) -> tuple[Band, str]:
    """A rate band and the sentence that says where it came from: typed, or a row of the right kind."""
    if typed is not None:
        band = parse_band(typed, flag)
        return band, f"{kind} {band_text(band)} OOM/yr, as typed ({flag})"
    row = ref.trend(row_id)
    if row.kind != kind:
        raise ConfigError(f"trend '{row.id}' is a {row.kind} rate; this option needs a rate of kind {kind} "
                          f"(rows of that kind: {', '.join(t.id for t in ref.trends_of(kind))})")
    rows = ref.trends_of(kind)
    band = rate_band(rows, row)
    return band, (f"{kind} {band_text(band)} OOM/yr: best from {row.id}, range the envelope of "
                  f"{', '.join(t.id for t in rows)}")


def _gains(ref: ReferenceData, rows: Sequence[str] | None, factors: Sequence[str] | None) -> tuple[list[Band], list[str]]:
    """One-time unhobbling gains in OOMs, from table rows and typed factors, with their names."""
    gains, names = [], []
    for m in rows or []:
        gains.append(multiplier_ooms(ref.multiplier(m)))
        names.append(m)
    for text in factors or []:
        typed = parse_band(text, "--unhobbling-factor")
        if typed.low <= 0:
            raise ConfigError(f"--unhobbling-factor must be a positive factor, got '{text}'")
        gains.append(multiplier_ooms(typed))
        names.append(f"×{text}")
    return gains, names


def _ooms_row(table: Table, label: str, band: Band) -> None:
    table.add_row(label, band_text(band, _ooms_text), factor(band.best))


# ---------------------------------------------------------------- count


def _point(ref: ReferenceData, text: str) -> tuple[str, Band, float | None]:
    """A model name from the training table, or a FLOP count typed as a number."""
    try:
        value = float(text)
    except ValueError:
        row = ref.training_run(text)
        return row.model, Band(row.flop_low, row.flop, row.flop_high), row.year
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"a compute figure must be a finite, positive number of FLOP, got '{text}'")
    return text, Band.point(value), None


def _list_models(ref: ReferenceData, as_json: bool, sources: bool) -> None:
    models = sorted(ref.training, key=lambda r: r.year)
    base = models[0].flop
    if as_json:
        print_json([{"model": m.model, "date": m.date, "flop": m.flop, "flop_low": m.flop_low,
                     "flop_high": m.flop_high, "ooms_above_first": math.log10(m.flop / base),
                     "source": m.source} for m in models])
        return
    table = Table(title=f"Training compute of notable models (OOMs above {models[0].model}; date = release)")
    for name in ("model", "date", "FLOP [low–high]", "OOMs", *(["source"] if sources else [])):
        table.add_column(escape(name), overflow="fold", style="dim" if name == "source" else None)
    for m in models:
        table.add_row(escape(m.model), m.date, band_text(Band(m.flop_low, m.flop, m.flop_high), flops),
                      f"{math.log10(m.flop / base):.2f}", *([escape(m.source)] if sources else []))
    console.print(table)
    if not sources:
        console.print("[dim]sources: add --sources, or --json[/]")


@app.command()
def count(
    ctx: typer.Context,
    start: Annotated[str | None, typer.Argument(help="Model name (see `count` alone) or FLOP, e.g. GPT-2 or 4e21.")] = None,
    end: Annotated[str | None, typer.Argument(help="Model name or FLOP, e.g. GPT-4; omit with --compute-rate.")] = None,
    effective: Annotated[bool, typer.Option(help="Add algorithmic progress over the years between, for effective compute.")] = False,
    algorithms: Annotated[str, typer.Option(help="Trend row giving the best algorithmic rate.")] = "essay-algorithms",
    algo_rate: AlgoRateOpt = None,
    compute_rate: ComputeRateOpt = None,
    years: Annotated[float | None, typer.Option(help="Years between the points, when either is a typed number.")] = None,
    unhobbling: UnhobblingOpt = None,
    unhobbling_factor: UnhobblingFactorOpt = None,
    sources: Annotated[bool, typer.Option(help="Show each row's source in the table.")] = False,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """OOMs of training compute between two points; alone, the table of notable models.

    Typed: `count 4e21 2e25 --years 4 --algo-rate 0.5` (effective compute from numbers),
    or `count 2e25 --years 4 --compute-rate 0.5 --algo-rate 0.5` (END from the rate).
    For prices use `ooms rate price ...`: this command counts FLOP.
    """
    ref = reference_data(ctx, data)
    as_json = wants_json(ctx, json_out)
    if start is None:
        _list_models(ref, as_json, sources)
        return
    a_name, a, a_year = _point(ref, start)
    if years is not None:
        finite_positive("--years", years)
    if end is None:
        if compute_rate is None or years is None:
            raise ConfigError("give two points to count between, e.g. `oomlab ooms count GPT-2 GPT-4`, "
                              "or one point with --years and --compute-rate")
        phys_rate = parse_band(compute_rate, "--compute-rate")
        physical = phys_rate.scaled(years)
        logs = log10_after(a.best, physical, "the end compute")
        b_name, b, b_year = f"{start} after {years:g} years at {compute_rate} OOM/yr", \
            Band(*(10**v for v in (logs.low, logs.best, logs.high))), None
        span = years
    else:
        if compute_rate is not None:
            raise ConfigError("--compute-rate gives the end point; give it without END (the FLOP at END already says)")
        b_name, b, b_year = _point(ref, end)
        physical = count_ooms(a, b)
        dated = None if a_year is None or b_year is None else b_year - a_year
        if dated is not None and years is not None:
            raise ConfigError(f"{a_name} and {b_name} are dated models ({dated:.1f} years apart); drop --years")
        span = dated if dated is not None else years
    result: dict[str, Any] = {"start": a_name, "end": b_name, "start_flop": a.as_dict(), "end_flop": b.as_dict(),
                              "physical_ooms": physical.as_dict(), "physical_factor": json_factor(physical.best),
                              "years": span, "physical_ooms_per_year": None if not span else physical.best / span,
                              "range": ENVELOPE}
    total = physical
    notes: list[str] = []
    wants_effective = effective or algo_rate is not None or unhobbling or unhobbling_factor
    if wants_effective:
        if span is None or span <= 0:
            raise ConfigError("effective compute needs the years between: two dated models (the later second), "
                              "or --years")
        algo, note = _rate(ref, "algorithmic_efficiency", algorithms, algo_rate, "--algo-rate")
        notes.append(note)
        gains, names = _gains(ref, unhobbling, unhobbling_factor)
        total = effective_ooms(physical, algo.scaled(span), gains)
        log10_after(a.best, total, "effective compute")
        result.update({"algorithmic_rate": algo.as_dict(), "algorithmic_ooms": algo.scaled(span).as_dict(),
                       "unhobbling": names, "unhobbling_ooms": sum(gains, ZERO).as_dict(),
                       "effective_ooms": total.as_dict(), "effective_factor": json_factor(total.best), "notes": notes})
    if as_json:
        print_json(result)
        return
    table = Table(title=escape(f"Counting the OOMs: {a_name} → {b_name}"))
    table.add_column("quantity")
    table.add_column(escape("best [low–high]"))
    table.add_column("factor (best)", justify="right")
    table.add_row("start FLOP", band_text(a, flops), "")
    table.add_row("end FLOP", band_text(b, flops), "")
    _ooms_row(table, "physical compute, OOMs", physical)
    if span:
        table.add_row("years apart", f"{span:.2f}", "")
        table.add_row("physical OOMs per year", f"{physical.best / span:.2f}", f"{factor(physical.best / span)}/yr")
    if wants_effective:
        _ooms_row(table, "algorithmic efficiency, OOMs", Band(**result["algorithmic_ooms"]))
        _ooms_row(table, "unhobbling, OOMs", Band(**result["unhobbling_ooms"]))
        _ooms_row(table, "[bold]effective compute, OOMs[/]", total)
    console.print(table)
    for note in notes:
        console.print(f"[dim]rate: {escape(note)}[/]", soft_wrap=True)
    console.print(f"[dim]{escape(ENVELOPE)}.[/]", soft_wrap=True)


# ---------------------------------------------------------------- project


@app.command("project")
def project_cmd(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--from", help="Model whose date and FLOP the projection starts from.")] = "GPT-4",
    start_year: Annotated[str | None, typer.Option(help="Start date instead of a model's: 2023, 2023.2 or 2023-03.")] = None,
    base_flop: Annotated[float | None, typer.Option(help="Start FLOP instead of a model's.")] = None,
    years: Annotated[float | None, typer.Option(help="Years to project forward (default 4).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Project to this date instead, e.g. 2027-12.")] = None,
    compute: Annotated[str, typer.Option(help="Trend row giving the best physical-compute rate.")] = "essay-compute",
    compute_rate: ComputeRateOpt = None,
    algorithms: Annotated[str, typer.Option(help="Trend row giving the best algorithmic rate.")] = "essay-algorithms",
    algo_rate: AlgoRateOpt = None,
    unhobbling: UnhobblingOpt = None,
    unhobbling_factor: UnhobblingFactorOpt = None,
    reach: Annotated[float | None, typer.Option(help="Report the year effective compute reaches this many start-year FLOP.")] = None,
    reach_ooms: Annotated[float | None, typer.Option(help="Report the year effective compute is this many OOMs above the start.")] = None,
    step: Annotated[float, typer.Option(help="Years between rows.")] = 1.0,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Project effective compute forward: physical × algorithmic × unhobbling, low/best/high.

    Best rates come from the chosen trend rows (or the typed --compute-rate / --algo-rate);
    low and high span every sourced row of the same kind, and bands add end to end, as the
    essay's ranges do: an envelope, not a probability interval.
    """
    ref = reference_data(ctx, data)
    model_year, model_flop = None, None
    if start_year is None or base_flop is None:
        row = ref.training_run(start)
        model_year, model_flop = row.year, row.flop
    year0 = parse_year(start_year, "--start-year") if start_year is not None else model_year
    flop0 = base_flop if base_flop is not None else model_flop
    assert year0 is not None and flop0 is not None
    finite_positive("--base-flop", flop0)
    if to is not None:
        if years is not None:
            raise ConfigError("give --years or --to, not both")
        years = parse_year(to, "--to") - year0
        if years <= 0:
            raise ConfigError(f"--to {to} is not after the start ({year0:.2f})")
    years = 4.0 if years is None else years
    phys, phys_note = _rate(ref, "physical_compute", compute, compute_rate, "--compute-rate")
    algo, algo_note = _rate(ref, "algorithmic_efficiency", algorithms, algo_rate, "--algo-rate")
    gains, names = _gains(ref, unhobbling, unhobbling_factor)
    points = project(year0, years, phys, algo, gains, step)
    log10_after(flop0, points[-1].effective, "effective compute")
    target = reach_ooms
    if reach is not None:
        target = math.log10(finite_positive("--reach", reach)) - math.log10(flop0)
    when = None if target is None else year_reaching(target, year0, phys + algo, sum(gains, ZERO))
    notes = [phys_note, algo_note]
    if wants_json(ctx, json_out):
        print_json({"start_year": year0, "start_flop": flop0, "years": years, "physical_rate": phys.as_dict(),
                    "algorithmic_rate": algo.as_dict(), "unhobbling": names, "range": ENVELOPE, "notes": notes,
                    "points": [{**p.as_dict(), "effective_factor": json_factor(p.effective.best),
                                "effective_flop": {k: flop0 * 10**v for k, v in p.effective.as_dict().items()}}
                               for p in points],
                    "target_ooms": target, "reached": None if when is None else when.as_dict()})
        return
    _print_projection(year0, flop0, points, notes)
    if when is not None and target is not None:
        fmt: Callable[[float | None], str] = lambda y: "never" if y is None else f"{y:.1f}"  # noqa: E731
        console.print(f"{target:.2f} OOMs ({factor(target)}) above the start is reached in {fmt(when.best)} "
                      f"(earliest {fmt(when.earliest)}, latest {fmt(when.latest)}).")


def _print_projection(year0: float, flop0: float, points: Sequence[Any], notes: Sequence[str]) -> None:
    table = Table(title=escape(f"Effective compute from {year0:.2f} ({flops(flop0)} FLOP), OOMs gained"),
                  caption="OOMs (best): phys. = physical compute, algo. = algorithms, unhob. = unhobbling")
    for name in ("year", "phys.", "algo.", "unhob.", "effective OOMs", "factor", "eff. FLOP"):
        table.add_column(escape(name), no_wrap=True)
    for p in points:
        table.add_row(f"{p.year:.2f}", _ooms_text(p.physical.best), _ooms_text(p.algorithmic.best),
                      _ooms_text(p.unhobbling.best), f"[bold]{band_text(p.effective, _ooms_text)}[/]",
                      factor(p.effective.best), flops(flop0 * 10**p.effective.best))
    console.print(table)
    for note in notes:
        console.print(f"[dim]rate: {escape(note)}[/]", soft_wrap=True)
    console.print(f"[dim]{escape(ENVELOPE)}.[/]", soft_wrap=True)


# ---------------------------------------------------------------- rate


class Quantity(str, Enum):
    """What a two-point rate is a rate of; it decides the unit every value is printed in."""

    price = "price"
    compute = "compute"


_UNITS = {Quantity.price: "$ per million tokens", Quantity.compute: "FLOP"}


def _value_text(what: Quantity, unit: str | None, value: float) -> str:
    if unit is not None:
        return f"{value:.4g} {unit}"
    if what is Quantity.price:
        return f"${value:.4g} per M tokens"
    return f"{flops(value)} FLOP"


@app.command()
def rate(
    ctx: typer.Context,
    what: Annotated[Quantity, typer.Argument(help="price ($ per million tokens) or compute (FLOP).")],
    start_date: Annotated[str, typer.Argument(help="First date: 2021-11, 2021 or 2021.8.")],
    start_value: Annotated[float, typer.Argument(help="The value then.")],
    end_date: Annotated[str, typer.Argument(help="Second date.")],
    end_value: Annotated[float, typer.Argument(help="The value then.")],
    to: Annotated[str | None, typer.Option("--to", help="Also extend the line to this date, e.g. 2027-12.")] = None,
    unit: Annotated[str | None, typer.Option(help="Print values in this unit instead (e.g. '$ per GPU-hour').")] = None,
    json_out: JsonOpt = False,
) -> None:
    """A two-point rate: OOMs between two dated values, OOMs and × per year, and the time per 2×.

    `rate price 2021-11 60 2024-11 0.06` is a16z's LLMflation: ÷1,000 in 3 years, ÷10 a year.
    """
    change = Change(parse_year(start_date, "the first date"), finite("the first value", start_value),
                    parse_year(end_date, "the second date"), finite("the second value", end_value))
    label = unit or _UNITS[what]
    at: dict[str, Any] | None = None
    if to is not None:
        year = parse_year(to, "--to")
        logs = math.log10(change.end_value) + change.ooms_per_year * (year - change.end_year)
        log10_after(1.0, Band.point(logs), f"the value at {to}")
        at = {"date": to, "year": year, "value": 10**logs}
    if wants_json(ctx, json_out):
        print_json({"what": what.value, "unit": label, **change.as_dict(), "at": at})
        return
    word = ("rise" if change.ooms >= 0 else "decline") if what is Quantity.price else \
        ("growth" if change.ooms >= 0 else "fall")
    table = Table(title=escape(f"Two-point rate of {what.value} ({label})"))
    table.add_column("quantity")
    table.add_column("value")
    table.add_row(escape(start_date), escape(_value_text(what, unit, change.start_value)))
    table.add_row(escape(end_date), escape(_value_text(what, unit, change.end_value)))
    table.add_row("years apart", f"{change.years:.2f}")
    table.add_row("change", f"{change.ooms:+.2f} OOMs ({factor(change.ooms)}, {word})")
    half = "doubles" if change.ooms >= 0 else "halves"
    per_2 = "never changes" if math.isinf(change.months_per_factor_2) else \
        f"{half} every {change.months_per_factor_2:.1f} months"
    table.add_row("rate", f"{change.ooms_per_year:+.2f} OOMs/yr ({factor(change.ooms_per_year)} per year); {per_2}")
    if at is not None:
        table.add_row(escape(f"at {to}, if the line holds"), escape(_value_text(what, unit, at["value"])))
    console.print(table)

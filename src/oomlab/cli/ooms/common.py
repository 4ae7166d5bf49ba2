"""The `oomlab ooms` app and what its commands share: options, the group's settings, the pace, reference data."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from oomlab.cli.common import DEFAULT_DB, console
from oomlab.errors import ConfigError, DatasetError
from oomlab.forecast.counting import Band
from oomlab.forecast.pace import PRESETS, HumanPace, resolve_pace
from oomlab.forecast.reference import ReferenceData, decimal_year, load_reference
from oomlab.numbers import sig

__all__ = ["DataOpt", "DaysPerWeekOpt", "HoursPerDayOpt", "HumanTpsOpt", "JsonOpt", "META_KEY", "OomsOptions",
           "PaceOpt", "app", "band_text", "command_pace", "convert_app", "figure", "json_factor", "ooms_options",
           "parse_year", "print_pace", "reference_data", "today_year", "wants_json"]

app = typer.Typer(
    name="ooms",
    help=(
        "Count the OOMs: orders of magnitude of compute, algorithms and price from sourced data "
        "(Aschenbrenner 2024, 'Situational Awareness', ch. I), and a measured run beside them.\n\n"
        "count GPT-2 GPT-4: OOMs of training compute between two models. "
        "project --years 4: effective compute, low/best/high. "
        "fit prices: price decline per year at fixed capability. "
        "rate price 2021-11 60 2024-11 0.06: a two-point rate. "
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

META_KEY = "oomlab.ooms"  # where the group's callback leaves its settings (ctx.meta) for the commands

DataOpt = Annotated[
    list[Path] | None,
    typer.Option("--data", help="Extra reference rows (CSV; the header names the table). Repeatable."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]

# The one human pace (oomlab.forecast.pace): on the group and on every command that uses it.
PaceOpt = Annotated[str | None, typer.Option(
    "--pace", help=f"Human pace preset: {', '.join(PRESETS)} (default 100-per-minute: SA ch. I; "
                   "one-per-second: the seed's 8 h a day at 1 token/s; month-per-million: the seed's 750 h per M tokens).")]
HumanTpsOpt = Annotated[float | None, typer.Option(
    "--human-tokens-per-second", help="A person's thinking speed, tokens/s (replaces the preset's).")]
HoursPerDayOpt = Annotated[float | None, typer.Option(
    "--hours-per-day", help="A person's working hours per day (replaces the preset's).")]
DaysPerWeekOpt = Annotated[float | None, typer.Option(
    "--days-per-week", help="A person's working days per week (replaces the preset's).")]


@dataclass
class OomsOptions:
    """The group's settings (`oomlab ooms --run ... --db ... --data ... --json --pace ...`), read by its commands."""

    run: str | None = None
    db: Path = Path(DEFAULT_DB)
    data: list[Path] = field(default_factory=list)
    json: bool = False
    pace: tuple[str | None, float | None, float | None, float | None] = (None, None, None, None)


def ooms_options(ctx: typer.Context) -> OomsOptions:
    """The settings the group's callback left for this command (defaults when it was invoked alone)."""
    return ctx.meta.get(META_KEY) or OomsOptions()


def command_pace(ctx: typer.Context, name: str | None = None, tokens_per_second: float | None = None,
                 hours_per_day: float | None = None, days_per_week: float | None = None) -> HumanPace:
    """The command's pace: its own flags, else the group's, else the default preset."""
    group = ooms_options(ctx).pace
    mine = (name, tokens_per_second, hours_per_day, days_per_week)
    return resolve_pace(*(m if m is not None else g for m, g in zip(mine, group, strict=True)))


def print_pace(pace: HumanPace) -> None:
    """Every output that uses the pace says which one it is."""
    console.print(f"[dim]{escape(pace.describe())}[/]", soft_wrap=True)


def reference_data(ctx: typer.Context, data: list[Path] | None) -> ReferenceData:
    """The sourced tables, with the group's and the command's --data rows added."""
    return load_reference([*ooms_options(ctx).data, *(data or [])])


def wants_json(ctx: typer.Context, flag: bool) -> bool:
    """--json on the command or on the group."""
    return flag or ooms_options(ctx).json


def figure(x: float | None, digits: int = 3) -> str:
    """A figure in a table of the OOMs: `digits` significant figures, an em dash where there is none."""
    return sig(x, digits, missing="—")


def json_factor(ooms: float) -> float | None:
    """10**ooms for JSON; None where it would overflow a float."""
    return 10**ooms if abs(ooms) < 308 else None


def parse_year(text: str, what: str) -> float:
    """A date typed as 2027-12, 2027-12-31, 2027 or 2027.5, as a decimal year."""
    try:
        value = float(text)
    except ValueError:
        try:
            return decimal_year(text, what)
        except DatasetError as e:
            raise ConfigError(str(e)) from None
    if not math.isfinite(value) or not 1 <= value <= 9999:
        raise ConfigError(f"{what} must be a year such as 2027, 2027.5 or 2027-12, got '{text}'")
    return value


def band_text(b: Band, fmt: Any = figure) -> str:
    """A band as `best [low–high]`, or its one value when the ends meet."""
    if math.isclose(b.low, b.high, rel_tol=1e-9, abs_tol=1e-12):
        return fmt(b.best)
    return f"{fmt(b.best)} [{fmt(b.low)}–{fmt(b.high)}]"


def today_year() -> float:
    """Today as a decimal year."""
    return decimal_year(dt.date.today().isoformat())

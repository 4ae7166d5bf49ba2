"""The `oomlab ooms` app, its shared options and number formats."""

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

from oomlab.errors import ConfigError, DatasetError
from oomlab.forecast.counting import Band
from oomlab.forecast.pace import PRESETS, HumanPace, resolve_pace
from oomlab.forecast.reference import ReferenceData, decimal_year, load_reference

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

_META_KEY = "oomlab.ooms"

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
class _Options:
    run: str | None = None
    db: Path = Path("oomlab.db")
    data: list[Path] = field(default_factory=list)
    json: bool = False
    pace: tuple[str | None, float | None, float | None, float | None] = (None, None, None, None)


def _options(ctx: typer.Context) -> _Options:
    return ctx.meta.get(_META_KEY) or _Options()


def _pace(ctx: typer.Context, name: str | None = None, tokens_per_second: float | None = None,
          hours_per_day: float | None = None, days_per_week: float | None = None) -> HumanPace:
    """The command's pace: its own flags, else the group's, else the default preset."""
    group = _options(ctx).pace
    mine = (name, tokens_per_second, hours_per_day, days_per_week)
    return resolve_pace(*(m if m is not None else g for m, g in zip(mine, group, strict=True)))


def _print_pace(pace: HumanPace) -> None:
    """Every output that uses the pace says which one it is."""
    _console().print(f"[dim]{escape(pace.describe())}[/]", soft_wrap=True)


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


def _times(ooms: float) -> str:
    """OOMs as the factor they are: 2.7 → '×501', -3 → '÷1,000', 12.3 → '×2.0e12'."""
    sign, size = ("×", ooms) if ooms >= 0 else ("÷", -ooms)
    if size >= 9:
        exponent = math.floor(size)
        return f"{sign}{10 ** (size - exponent):.2g}e{exponent}"
    value = 10**size
    if value < 10:
        return f"{sign}{value:.3g}"
    digits = math.floor(math.log10(value)) - 2
    return f"{sign}{round(value, -digits):,.0f}"


def _factor(ooms: float) -> float | None:
    """10**ooms for JSON; None where it would overflow a float."""
    return 10**ooms if abs(ooms) < 308 else None


def _when(text: str, what: str) -> float:
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


def _band(b: Band, fmt: Any = _g) -> str:
    if math.isclose(b.low, b.high, rel_tol=1e-9, abs_tol=1e-12):
        return fmt(b.best)
    return f"{fmt(b.best)} [{fmt(b.low)}–{fmt(b.high)}]"


def _today() -> float:
    return decimal_year(dt.date.today().isoformat())


def _load_totals(db: Path, run_id: str) -> Any:
    return _load_run(db, run_id)[1]


def _load_run(db: Path, run_id: str) -> tuple[str, Any]:
    """(the run's id, its totals): `run_id` may be an id, a unique prefix of one, or 'latest'."""
    if not Path(db).is_file():
        raise ConfigError(f"no database at {db}; pass --db with the file a sweep wrote")
    from oomlab.store import Store  # lazy: only --run needs the database

    store = Store(db)
    try:
        resolve = getattr(store, "resolve_run", None)
        run_id = resolve(run_id) if resolve is not None else run_id
        return run_id, store.run_totals(run_id)
    finally:
        store.close()

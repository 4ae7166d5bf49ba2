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

from oomlab.errors import ConfigError
from oomlab.forecast import conversions as conv
from oomlab.forecast.counting import Band
from oomlab.forecast.reference import ReferenceData, decimal_year, load_reference

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


def _load_totals(db: Path, run_id: str) -> Any:
    if not Path(db).is_file():
        raise ConfigError(f"no database at {db}; pass --db with the file a sweep wrote")
    from oomlab.store import Store  # lazy: only --run needs the database

    store = Store(db)
    try:
        return store.run_totals(run_id)
    finally:
        store.close()

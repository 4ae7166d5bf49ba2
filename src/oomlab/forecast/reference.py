"""Sourced reference data for counting the OOMs, and the loader that lets users add rows.

Six tables ship as CSV files in `oomlab/forecast/data/`; every row names its source
and its date, so each figure a command prints can be checked. A user adds or corrects
rows with `--data my.csv`: the header says which table the file extends, and a user
row replaces a shipped row with the same key (model, accelerator, id ...).
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from oomlab.errors import DatasetError, UnknownNameError

TREND_KINDS = ("physical_compute", "algorithmic_efficiency", "price_decline")


@dataclass(frozen=True)
class TrainingRun:
    """Training compute of one model, with a low/high range where the estimate is uncertain.

    `date` is the model's release (publication) date; where sources disagree on the
    FLOP, low and high span them and `source` names each.
    """

    model: str
    date: str
    year: float
    flop: float
    flop_low: float
    flop_high: float
    source: str


@dataclass(frozen=True)
class TokenPrice:
    """The cheapest price seen at a date for a fixed capability level (a benchmark threshold).

    A price per million tokens is one number only after input and output prices are
    blended; `blend` says how (e.g. "3:1 input:output", "1:1 mean").
    """

    capability: str
    threshold: str
    model: str
    date: str
    year: float
    usd_per_million_tokens: float
    source: str
    blend: str = ""


@dataclass(frozen=True)
class Accelerator:
    """One accelerator's datasheet figures and what a deployed unit costs in watts and dollars.

    `date` is the date the vendor announced the accelerator, for every row (not when
    it shipped, nor when a price or power figure was published).
    """

    accelerator: str
    date: str  # announcement date
    year: float
    peak_flops: float  # dense bf16 FLOP/s
    memory_gb: float
    memory_tbps: float
    tdp_watts: float
    all_in_watts: float | None  # datacenter power per GPU, cooling and networking included
    unit_usd: float | None
    source: str


@dataclass(frozen=True)
class TrendRate:
    """A trend in OOMs per year (for price_decline: OOMs of price fall per year)."""

    id: str
    kind: str
    low: float
    best: float
    high: float
    date: str
    year: float
    source: str


@dataclass(frozen=True)
class Multiplier:
    """A one-time effective-compute multiplier (an 'unhobbling' gain), as a plain factor."""

    id: str
    low: float
    best: float
    high: float
    date: str
    year: float
    source: str


@dataclass(frozen=True)
class EnergyFigure:
    """A published joules-per-token figure; `measured` says whether a meter, not a TDP, gave it."""

    id: str
    label: str
    date: str
    year: float
    joules_per_token: float
    measured: bool
    source: str


@dataclass(frozen=True)
class ReferenceData:
    """Every reference table, shipped rows merged with the user's."""

    training: tuple[TrainingRun, ...]
    prices: tuple[TokenPrice, ...]
    hardware: tuple[Accelerator, ...]
    trends: tuple[TrendRate, ...]
    multipliers: tuple[Multiplier, ...]
    energy: tuple[EnergyFigure, ...]

    def training_run(self, model: str) -> TrainingRun:
        """Look a model up by name, ignoring case."""
        return _lookup("model", model, {r.model.lower(): r for r in self.training})

    def capabilities(self) -> list[str]:
        return sorted({p.capability for p in self.prices})

    def price_series(self, capability: str) -> tuple[TokenPrice, ...]:
        """Prices at one capability level, oldest first."""
        rows = tuple(sorted((p for p in self.prices if p.capability == capability), key=lambda p: p.year))
        if not rows:
            raise UnknownNameError("capability", capability, self.capabilities())
        return rows

    def accelerator(self, name: str) -> Accelerator:
        return _lookup("accelerator", name, {a.accelerator.lower(): a for a in self.hardware})

    def trend(self, trend_id: str) -> TrendRate:
        return _lookup("trend", trend_id, {t.id.lower(): t for t in self.trends})

    def trends_of(self, kind: str) -> tuple[TrendRate, ...]:
        return tuple(t for t in self.trends if t.kind == kind)

    def multiplier(self, multiplier_id: str) -> Multiplier:
        return _lookup("multiplier", multiplier_id, {m.id.lower(): m for m in self.multipliers})

    def all_rows(self) -> list[tuple[str, Any]]:
        """(table name, row) for every row: what the source-column test walks."""
        out: list[tuple[str, Any]] = []
        for table in _TABLES:
            out.extend((table.name, row) for row in getattr(self, table.attribute))
        return out


def _lookup(kind: str, name: str, by_key: dict[str, Any]) -> Any:
    row = by_key.get(name.strip().lower())
    if row is None:
        raise UnknownNameError(kind, name, sorted(getattr(r, _first_field(r)) for r in by_key.values()))
    return row


def _first_field(row: Any) -> str:
    return next(iter(row.__dataclass_fields__))


# ---------------------------------------------------------------- parsing one cell


class _Row:
    """One CSV row with the file and line it came from, so every error can name both."""

    def __init__(self, values: dict[str, str | None], where: str):
        self.values = values
        self.where = where

    def fail(self, message: str) -> DatasetError:
        return DatasetError(f"{self.where}: {message}")

    def text(self, column: str, required: bool = True) -> str:
        value = (self.values.get(column) or "").strip()
        if required and not value:
            raise self.fail(f"column '{column}' is empty; every row needs one")
        return value

    def number(self, column: str, positive: bool = True) -> float:
        raw = self.text(column)
        try:
            value = float(raw)
        except ValueError:
            raise self.fail(f"column '{column}' must be a number, got '{raw}'") from None
        if not math.isfinite(value) or (positive and value <= 0):
            raise self.fail(f"column '{column}' must be a positive number, got '{raw}'")
        return value

    def optional_number(self, column: str) -> float | None:
        return self.number(column) if self.text(column, required=False) else None

    def year(self, column: str = "date") -> float:
        return decimal_year(self.text(column), self.where)

    def band(self) -> tuple[float, float, float]:
        low, best, high = self.number("low", False), self.number("best", False), self.number("high", False)
        if not low <= best <= high:
            raise self.fail(f"need low <= best <= high, got {low}, {best}, {high}")
        return low, best, high

    def flag(self, column: str) -> bool:
        raw = self.text(column).lower()
        if raw in ("yes", "true", "1"):
            return True
        if raw in ("no", "false", "0"):
            return False
        raise self.fail(f"column '{column}' must be yes or no, got '{raw}'")


def decimal_year(text: str, where: str = "date") -> float:
    """'2023', '2023-03' or '2023-03-14' as a decimal year (2023.0, 2023.17, 2023.20)."""
    parts = text.strip().split("-")
    try:
        if len(parts) == 1:
            return float(int(parts[0]))
        if len(parts) == 2:
            year, month = int(parts[0]), int(parts[1])
            if not 1 <= month <= 12:
                raise ValueError
            return year + (month - 1) / 12
        if len(parts) == 3:
            day = dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
            start = dt.date(day.year, 1, 1)
            days = (dt.date(day.year + 1, 1, 1) - start).days
            return day.year + (day - start).days / days
    except ValueError:
        pass
    raise DatasetError(f"{where}: date must be YYYY, YYYY-MM or YYYY-MM-DD, got '{text}'")


# ---------------------------------------------------------------- the tables


def _training(r: _Row) -> TrainingRun:
    flop = r.number("flop")
    low = r.optional_number("flop_low") or flop
    high = r.optional_number("flop_high") or flop
    if not low <= flop <= high:
        raise r.fail(f"need flop_low <= flop <= flop_high, got {low:g}, {flop:g}, {high:g}")
    return TrainingRun(r.text("model"), r.text("date"), r.year(), flop, low, high, r.text("source"))


def _price(r: _Row) -> TokenPrice:
    return TokenPrice(
        r.text("capability"), r.text("threshold", required=False), r.text("model"), r.text("date"), r.year(),
        r.number("usd_per_million_tokens"), r.text("source"), r.text("blend", required=False),
    )


def _accelerator(r: _Row) -> Accelerator:
    return Accelerator(
        r.text("accelerator"), r.text("date"), r.year(), r.number("peak_flops"), r.number("memory_gb"),
        r.number("memory_tbps"), r.number("tdp_watts"), r.optional_number("all_in_watts"),
        r.optional_number("unit_usd"), r.text("source"),
    )


def _trend(r: _Row) -> TrendRate:
    kind = r.text("kind")
    if kind not in TREND_KINDS:
        raise r.fail(f"kind must be one of {', '.join(TREND_KINDS)}, got '{kind}'")
    return TrendRate(r.text("id"), kind, *r.band(), r.text("date"), r.year(), r.text("source"))


def _multiplier(r: _Row) -> Multiplier:
    low, best, high = r.band()
    if low <= 0:
        raise r.fail(f"a multiplier must be positive, got low = {low}")
    return Multiplier(r.text("id"), low, best, high, r.text("date"), r.year(), r.text("source"))


def _energy(r: _Row) -> EnergyFigure:
    return EnergyFigure(
        r.text("id"), r.text("label"), r.text("date"), r.year(), r.number("joules_per_token"),
        r.flag("measured"), r.text("source"),
    )


@dataclass(frozen=True)
class _Table:
    name: str
    attribute: str  # field of ReferenceData
    columns: tuple[str, ...]
    optional: tuple[str, ...]
    build: Callable[[_Row], Any]
    key: Callable[[Any], tuple[str, ...]]

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"

    @property
    def required(self) -> set[str]:
        return set(self.columns) - set(self.optional)


_TABLES = (
    _Table("training_compute", "training", ("model", "date", "flop", "flop_low", "flop_high", "source"),
           ("flop_low", "flop_high"), _training, lambda r: (r.model.lower(),)),
    _Table("token_prices", "prices",
           ("capability", "threshold", "model", "date", "usd_per_million_tokens", "blend", "source"),
           ("threshold", "blend"), _price, lambda r: (r.capability, r.model.lower(), r.date)),
    _Table("hardware", "hardware",
           ("accelerator", "date", "peak_flops", "memory_gb", "memory_tbps", "tdp_watts", "all_in_watts",
            "unit_usd", "source"),
           ("all_in_watts", "unit_usd"), _accelerator, lambda r: (r.accelerator.lower(),)),
    _Table("trends", "trends", ("id", "kind", "low", "best", "high", "date", "source"), (),
           _trend, lambda r: (r.id.lower(),)),
    _Table("multipliers", "multipliers", ("id", "low", "best", "high", "date", "source"), (),
           _multiplier, lambda r: (r.id.lower(),)),
    _Table("energy", "energy", ("id", "label", "date", "joules_per_token", "measured", "source"), (),
           _energy, lambda r: (r.id.lower(),)),
)


def table_names() -> list[str]:
    return [t.name for t in _TABLES]


def _uncommented(lines: Iterable[str]) -> Iterator[str]:
    """Lines with '# ...' comment lines blanked (not dropped), so line numbers stay the file's own."""
    for line in lines:
        yield "" if line.lstrip().startswith("#") else line


def _read_rows(lines: Iterable[str], where: str, table: _Table | None) -> tuple[_Table, list[Any]]:
    """Parse one CSV; with table None, the header decides which table it extends.

    Lines starting with '#' are comments: the shipped files use them to say what a
    column means (e.g. which date a hardware row's `date` is).
    """
    reader = csv.reader(_uncommented(lines))
    header: list[str] | None = None
    rows: list[Any] = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue  # a blank or comment line
        line = reader.line_num
        if header is None:
            header = [h.strip() for h in cells]
            table = table or _match_table(header, where, line)
            continue
        if len(cells) > len(header):
            raise DatasetError(f"{where}, line {line}: more cells than the header has columns")
        values: dict[str, str | None] = dict.fromkeys(header)
        values.update(zip(header, cells, strict=False))
        rows.append(table.build(_Row(values, f"{where}, line {line}")))  # type: ignore[union-attr]
    if header is None or table is None:
        raise DatasetError(f"{where}, line 1: empty file; expected a CSV header")
    return table, rows


def _match_table(header: list[str], where: str, line: int) -> _Table:
    matches = [t for t in _TABLES if t.required <= set(header) <= set(t.columns)]
    if not matches:
        expected = "; ".join(f"{t.name}: {','.join(t.columns)}" for t in _TABLES)
        raise DatasetError(
            f"{where}, line {line}: header '{','.join(header)}' matches no reference table; expected one of — {expected}"
        )
    return matches[0]


@functools.lru_cache(maxsize=1)
def _shipped() -> dict[str, tuple[Any, ...]]:
    data = resources.files("oomlab.forecast") / "data"
    out: dict[str, tuple[Any, ...]] = {}
    for table in _TABLES:
        text = (data / table.filename).read_text(encoding="utf-8")
        _, rows = _read_rows(text.splitlines(), f"oomlab/forecast/data/{table.filename}", table)
        out[table.attribute] = tuple(rows)
    return out


def load_reference(extra: Sequence[str | Path] = ()) -> ReferenceData:
    """The shipped reference tables, plus rows from each user CSV in `extra` (later rows win)."""
    merged: dict[str, dict[tuple[str, ...], Any]] = {
        t.attribute: {t.key(r): r for r in _shipped()[t.attribute]} for t in _TABLES
    }
    for path in extra:
        p = Path(path)
        if not p.is_file():
            raise DatasetError(f"{p}: no such data file")
        with p.open(encoding="utf-8", newline="") as f:
            table, rows = _read_rows(f, str(p), None)
        for row in rows:
            merged[table.attribute][table.key(row)] = row
    return ReferenceData(**{name: tuple(rows.values()) for name, rows in merged.items()})

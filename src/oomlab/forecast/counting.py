"""Counting the OOMs: orders of magnitude between two points, effective compute, projections.

The method is Aschenbrenner's ("Situational Awareness", 2024, ch. I): progress is
measured in OOMs (factors of 10) of *effective* compute, the sum in log space of
physical compute, algorithmic efficiency and one-time "unhobbling" gains, and the
future is read off straight lines in log space. Uncertain inputs are carried as
low/best/high bands; bands add end to end (all lows together, all highs together),
as the essay's own ranges do — an envelope, not a confidence interval. A rate's
range is the envelope (lowest low, highest high) of every sourced row of its kind.

Every number that comes in is checked finite here, so inf, nan and overflow end in
one ConfigError line rather than a traceback or an "inf" in a table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from oomlab.errors import ConfigError
from oomlab.forecast.pace import finite, finite_positive
from oomlab.forecast.reference import Multiplier, TrendRate

LOG10_MAX_FLOAT = math.log10(1.7976931348623157e308)  # ≈ 308.25: past this a float overflows to inf
MAX_ROWS = 10_000  # a projection table longer than this is a typo in --step, not a question


@dataclass(frozen=True)
class Band:
    """A low / best / high triple in one unit; low <= best <= high."""

    low: float
    best: float
    high: float

    def __post_init__(self) -> None:
        for name in ("low", "best", "high"):
            finite(f"a band's {name} value", getattr(self, name))
        if not self.low <= self.best + 1e-12 or not self.best <= self.high + 1e-12:
            raise ConfigError(f"a band needs low <= best <= high, got {self.low}, {self.best}, {self.high}")

    @classmethod
    def point(cls, value: float) -> Band:
        return cls(value, value, value)

    def __add__(self, other: Band) -> Band:
        return Band(self.low + other.low, self.best + other.best, self.high + other.high)

    def scaled(self, factor: float) -> Band:
        """The band times a non-negative factor (years, for a rate)."""
        if finite("a band's scale factor", factor) < 0:
            raise ConfigError(f"cannot scale a band by a negative factor ({factor})")
        return Band(self.low * factor, self.best * factor, self.high * factor)

    def as_dict(self) -> dict[str, float]:
        return {"low": self.low, "best": self.best, "high": self.high}


ZERO = Band.point(0.0)


def ooms(factor: float) -> float:
    """A factor in orders of magnitude: 1000× is 3 OOMs."""
    return math.log10(finite_positive("an OOM factor", factor))


def ooms_between(start: float, end: float) -> float:
    """OOMs from one quantity to another (GPT-2 → GPT-4 training compute ≈ 3.7)."""
    if not (finite("a start value", start) > 0 and finite("an end value", end) > 0):
        raise ConfigError(f"OOMs need positive quantities, got {start:g} and {end:g}")
    return math.log10(end) - math.log10(start)  # two logs: end / start could overflow


def count_ooms(start: Band, end: Band) -> Band:
    """OOMs between two uncertain quantities: low pairs the largest start with the smallest end."""
    return Band(ooms_between(start.high, end.low), ooms_between(start.best, end.best), ooms_between(start.low, end.high))


def multiplier_ooms(multiplier: Multiplier | Band) -> Band:
    """A multiplicative gain (10×, 5–30×) as a band of OOMs."""
    return Band(ooms(multiplier.low), ooms(multiplier.best), ooms(multiplier.high))


def rate_band(rows: Sequence[TrendRate], best: TrendRate | None = None) -> Band:
    """One band from several sourced rates of a kind.

    Low and high span every row (the widest range any source gives); best is the
    chosen row's best, or the median of the rows' bests when none is chosen.
    """
    if not rows:
        raise ConfigError("no trend rates to combine")
    if best is None:
        bests = sorted(r.best for r in rows)
        mid = len(bests) // 2
        best_value = bests[mid] if len(bests) % 2 else (bests[mid - 1] + bests[mid]) / 2
    else:
        best_value = best.best
    low = min([r.low for r in rows] + [best_value])
    high = max([r.high for r in rows] + [best_value])
    return Band(low, best_value, high)


def effective_ooms(physical: Band, algorithmic: Band, unhobbling: Sequence[Band] = ()) -> Band:
    """Effective compute = physical × algorithmic × unhobbling, i.e. a sum of OOMs (SA ch. I)."""
    total = physical + algorithmic
    for gain in unhobbling:
        total = total + gain
    return total


@dataclass(frozen=True)
class ProjectionPoint:
    """OOMs gained from the start year to `year`, by driver and in total."""

    year: float
    physical: Band
    algorithmic: Band
    unhobbling: Band
    effective: Band

    def as_dict(self) -> dict[str, object]:
        return {
            "year": self.year,
            "physical_ooms": self.physical.as_dict(),
            "algorithmic_ooms": self.algorithmic.as_dict(),
            "unhobbling_ooms": self.unhobbling.as_dict(),
            "effective_ooms": self.effective.as_dict(),
        }


def project(
    start_year: float,
    years: float,
    physical_rate: Band,
    algorithmic_rate: Band,
    unhobbling: Sequence[Band] = (),
    step: float = 1.0,
) -> tuple[ProjectionPoint, ...]:
    """Straight lines in log space from `start_year`, one point per `step` years.

    Rates are OOMs per year; unhobbling gains are one-time OOMs, counted in full from
    the first step on (the essay treats them as a step change, not a rate).
    """
    finite("the start year", start_year)
    if not (finite("years", years) > 0 and finite("step", step) > 0):
        raise ConfigError(f"years and step must be positive, got {years:g} and {step:g}")
    if years / step > MAX_ROWS:
        raise ConfigError(f"{years:g} years in steps of {step:g} is {years / step:,.0f} rows; "
                          f"use a step of at least {years / MAX_ROWS:.2g} years")
    if physical_rate.low < 0 or algorithmic_rate.low < 0:
        raise ConfigError("projection rates are OOMs gained per year and cannot be negative")
    gains = ZERO
    for gain in unhobbling:
        gains = gains + gain
    points = []
    n = int(math.floor(years / step + 1e-9))
    offsets = [step * i for i in range(n + 1)]
    if offsets[-1] < years - 1e-9:
        offsets.append(years)
    for t in offsets:
        phys, algo = physical_rate.scaled(t), algorithmic_rate.scaled(t)
        unh = gains if t > 0 else ZERO
        points.append(ProjectionPoint(start_year + t, phys, algo, unh, effective_ooms(phys, algo, [unh])))
    return tuple(points)


@dataclass(frozen=True)
class YearBand:
    """When a target is reached: earliest (fast trends), best, latest (slow trends); None is never."""

    earliest: float | None
    best: float | None
    latest: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {"earliest": self.earliest, "best": self.best, "latest": self.latest}


def year_reaching(target_ooms: float, start_year: float, rate: Band, offset: Band = ZERO) -> YearBand:
    """The year effective compute is `target_ooms` above the start: start + (target − offset) / rate.

    `rate` is total OOMs per year (physical + algorithmic), `offset` one-time gains
    (unhobbling). The earliest year pairs the high rate with the high offset.
    """
    finite("the target OOMs", target_ooms)
    finite("the start year", start_year)

    def solve(r: float, o: float) -> float | None:
        gap = target_ooms - o
        if gap <= 0:
            return start_year
        if r <= 0:
            return None
        return start_year + gap / r

    return YearBand(solve(rate.high, offset.high), solve(rate.best, offset.best), solve(rate.low, offset.low))


def parse_band(text: str, what: str) -> Band:
    """A band typed as a number: '0.5', 'LOW:HIGH' (best = midpoint) or 'LOW:BEST:HIGH'."""
    parts = [p.strip() for p in str(text).split(":")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"{what} must be a number, LOW:HIGH or LOW:BEST:HIGH, got '{text}'") from None
    if len(values) == 1:
        values = values * 3
    elif len(values) == 2:
        values = [values[0], (values[0] + values[1]) / 2, values[1]]
    elif len(values) != 3:
        raise ConfigError(f"{what} must be a number, LOW:HIGH or LOW:BEST:HIGH, got '{text}'")
    for v in values:
        finite(what, v)
    if not values[0] <= values[1] <= values[2]:
        raise ConfigError(f"{what} needs LOW <= BEST <= HIGH, got '{text}'")
    return Band(*values)


def log10_after(start: float, gained: Band, what: str = "the result") -> Band:
    """log10 of `start` × 10**gained, refused once it would overflow a float (≈ 1.8e308)."""
    top = math.log10(finite_positive("the start value", start)) + gained.high
    if top > LOG10_MAX_FLOAT:
        raise ConfigError(f"{what} would reach 10^{top:.4g}, past the largest representable number (~1.8e308); "
                          "use fewer years or lower rates")
    base = math.log10(start)
    return Band(base + gained.low, base + gained.best, base + gained.high)


@dataclass(frozen=True)
class Change:
    """A quantity at two dates: total OOMs and the constant rate between them (a two-point trend)."""

    start_year: float
    start_value: float
    end_year: float
    end_value: float

    def __post_init__(self) -> None:
        for name in ("start_year", "start_value", "end_year", "end_value"):
            finite(name.replace("_", " "), getattr(self, name))
        if self.start_value <= 0 or self.end_value <= 0:
            raise ConfigError(f"a rate in OOMs needs positive values, got {self.start_value:g} and {self.end_value:g}")
        if self.end_year == self.start_year:
            raise ConfigError("the two dates are the same; a rate per year needs two different dates")

    @property
    def years(self) -> float:
        return self.end_year - self.start_year

    @property
    def ooms(self) -> float:
        """Signed: negative for a fall (a price decline)."""
        return ooms_between(self.start_value, self.end_value)

    @property
    def ooms_per_year(self) -> float:
        return self.ooms / self.years

    @property
    def months_per_factor_2(self) -> float:
        """Doubling time for growth, halving time for decline; inf when nothing changes."""
        rate = abs(self.ooms_per_year)
        return math.inf if rate == 0 else 12 * math.log10(2) / rate

    def as_dict(self) -> dict[str, float]:
        return {"start_year": self.start_year, "start_value": self.start_value, "end_year": self.end_year,
                "end_value": self.end_value, "years": self.years, "ooms": self.ooms,
                "factor": 10**self.ooms, "ooms_per_year": self.ooms_per_year,
                "factor_per_year": 10**self.ooms_per_year, "months_per_factor_2": self.months_per_factor_2}

"""Counting the OOMs: orders of magnitude between two points, effective compute, projections.

The method is Aschenbrenner's ("Situational Awareness", 2024, ch. I): progress is
measured in OOMs (factors of 10) of *effective* compute, the sum in log space of
physical compute, algorithmic efficiency and one-time "unhobbling" gains, and the
future is read off straight lines in log space. Uncertain inputs are carried as
low/best/high bands; bands add end to end (all lows together, all highs together),
as the essay's own ranges do — an envelope, not a confidence interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from oomlab.errors import ConfigError
from oomlab.forecast.reference import Multiplier, TrendRate


@dataclass(frozen=True)
class Band:
    """A low / best / high triple in one unit; low <= best <= high."""

    low: float
    best: float
    high: float

    def __post_init__(self) -> None:
        if not self.low <= self.best + 1e-12 or not self.best <= self.high + 1e-12:
            raise ConfigError(f"a band needs low <= best <= high, got {self.low}, {self.best}, {self.high}")

    @classmethod
    def point(cls, value: float) -> Band:
        return cls(value, value, value)

    def __add__(self, other: Band) -> Band:
        return Band(self.low + other.low, self.best + other.best, self.high + other.high)

    def scaled(self, factor: float) -> Band:
        """The band times a non-negative factor (years, for a rate)."""
        if factor < 0:
            raise ConfigError(f"cannot scale a band by a negative factor ({factor})")
        return Band(self.low * factor, self.best * factor, self.high * factor)

    def as_dict(self) -> dict[str, float]:
        return {"low": self.low, "best": self.best, "high": self.high}


ZERO = Band.point(0.0)


def ooms(factor: float) -> float:
    """A factor in orders of magnitude: 1000× is 3 OOMs."""
    if factor <= 0:
        raise ConfigError(f"OOMs need a positive factor, got {factor}")
    return math.log10(factor)


def ooms_between(start: float, end: float) -> float:
    """OOMs from one quantity to another (GPT-2 → GPT-4 training compute ≈ 3.7)."""
    if start <= 0 or end <= 0:
        raise ConfigError(f"OOMs need positive quantities, got {start:g} and {end:g}")
    return math.log10(end / start)


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
    if years <= 0 or step <= 0:
        raise ConfigError(f"years and step must be positive, got {years} and {step}")
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

    def solve(r: float, o: float) -> float | None:
        gap = target_ooms - o
        if gap <= 0:
            return start_year
        if r <= 0:
            return None
        return start_year + gap / r

    return YearBand(solve(rate.high, offset.high), solve(rate.best, offset.best), solve(rate.low, offset.low))

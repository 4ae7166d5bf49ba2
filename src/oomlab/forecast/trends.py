"""Trend fitting: a log-linear regression of dated values gives a rate per year.

log10(value) = a + b · (year − ȳ), ordinary least squares. The slope b is the rate in
OOMs per year (negative for a falling price); 10**|b| is the ×-per-year factor.
The interval is the usual Student-t interval on the slope (n − 2 degrees of
freedom), the method Epoch AI uses for its price trends ("LLM inference price
trends", 2025: log-linear regression of the cheapest qualifying prices over time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from oomlab.errors import FitError
from oomlab.forecast.counting import Band


@dataclass(frozen=True)
class TrendFit:
    """A fitted straight line in log space, with its slope interval."""

    n: int
    start_year: float
    end_year: float
    ooms_per_year: float  # signed: negative for a decline
    ooms_per_year_low: float | None  # None when two points leave no degrees of freedom
    ooms_per_year_high: float | None
    center_year: float  # the regression is centred here for numerical stability
    log10_at_center: float
    r_squared: float | None
    confidence: float

    @property
    def factor_per_year(self) -> float:
        """Multiplicative change per year: 10.0 for 10× growth, 0.1 for a 10× fall."""
        return 10.0**self.ooms_per_year

    @property
    def fold_per_year(self) -> float:
        """The size of the change per year, whatever its direction (10 for ×10 or ÷10)."""
        return 10.0 ** abs(self.ooms_per_year)

    @property
    def direction(self) -> str:
        return "growth" if self.ooms_per_year >= 0 else "decline"

    @property
    def months_per_halving_or_doubling(self) -> float:
        """Months for a factor of 2 (doubling time for growth, halving time for decline)."""
        if self.ooms_per_year == 0:
            return math.inf
        return 12 * math.log10(2) / abs(self.ooms_per_year)

    @property
    def slope_band(self) -> Band:
        low = self.ooms_per_year if self.ooms_per_year_low is None else self.ooms_per_year_low
        high = self.ooms_per_year if self.ooms_per_year_high is None else self.ooms_per_year_high
        return Band(low, self.ooms_per_year, high)

    def predict(self, year: float) -> float:
        """The fitted value at a year."""
        return _pow10(self.log10_at_center + self.ooms_per_year * (year - self.center_year), year)

    def projection_band(self, year: float, anchor_year: float | None = None) -> Band:
        """Values at `year` along the low/best/high slopes, all starting from the fit at `anchor_year`.

        Only the slope's uncertainty is carried; the anchor defaults to the last data year.
        """
        anchor = self.end_year if anchor_year is None else anchor_year
        base = self.log10_at_center + self.ooms_per_year * (anchor - self.center_year)
        dt = year - anchor
        slopes = self.slope_band
        values = sorted(_pow10(base + s * dt, year) for s in (slopes.low, slopes.best, slopes.high))
        return Band(values[0], _pow10(base + slopes.best * dt, year), values[2])

    def as_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "start_year": self.start_year,
            "end_year": self.end_year,
            "ooms_per_year": self.ooms_per_year,
            "ooms_per_year_low": self.ooms_per_year_low,
            "ooms_per_year_high": self.ooms_per_year_high,
            "factor_per_year": self.factor_per_year,
            "fold_per_year": self.fold_per_year,
            "direction": self.direction,
            "months_per_factor_2": self.months_per_halving_or_doubling,
            "r_squared": self.r_squared,
            "confidence": self.confidence,
        }


def _pow10(log10_value: float, year: float) -> float:
    """10**x, refused with one line where the line leaves the floats (past ~1e308 or below ~1e-308)."""
    if not -307 < log10_value < 308:
        raise FitError(f"the trendline at {year:.1f} is 10^{log10_value:.0f}, outside the representable numbers; "
                       "project fewer years")
    return 10.0**log10_value


def fit_log_linear(years: Sequence[float], values: Sequence[float], confidence: float = 0.9) -> TrendFit:
    """Fit log10(value) against year; the slope is OOMs per year, with a t-interval."""
    if not 0 < confidence < 1:
        raise FitError(f"confidence must be between 0 and 1, got {confidence}")
    x = np.asarray(years, dtype=float)
    y_raw = np.asarray(values, dtype=float)
    if x.shape != y_raw.shape or x.ndim != 1:
        raise FitError("years and values must be two lists of the same length")
    if len(x) < 2:
        raise FitError(f"a trend needs at least two dated points, got {len(x)}")
    if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y_raw)) or np.any(y_raw <= 0):
        raise FitError("a log-linear fit needs finite years and positive finite values")
    center = float(x.mean())
    dx = x - center
    sxx = float(dx @ dx)
    if sxx == 0:
        raise FitError("all points share one date; a rate per year needs at least two dates")
    y = np.log10(y_raw)
    slope = float(dx @ (y - y.mean()) / sxx)
    intercept = float(y.mean())
    residuals = y - (intercept + slope * dx)
    n = len(x)
    ss_res = float(residuals @ residuals)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = None if n < 3 or ss_tot == 0 else 1 - ss_res / ss_tot
    low = high = None
    if n > 2:
        se = math.sqrt(ss_res / (n - 2) / sxx)
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 2)) * se
        low, high = slope - half, slope + half
    return TrendFit(n, float(x.min()), float(x.max()), slope, low, high, center, intercept, r2, confidence)

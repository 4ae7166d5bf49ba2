"""Counting the OOMs (Aschenbrenner 2024, "Situational Awareness", ch. I) from sourced data.

- `reference`: the shipped CSV tables (training compute, token prices, hardware, trend
  rates, unhobbling multipliers, energy per token) and the `--data` loader.
- `counting`: OOMs between points, effective compute, projections, "which year".
- `trends`: log-linear fits of dated values → rate per year with an interval.
- `conversions`: tokens ↔ working time, J/token ↔ watts, fleets, prices, clusters.
- `measured`: a run's ledger totals in the same units.
- `plot`: the trendline chart (imports matplotlib; not imported here).
"""

from oomlab.forecast.counting import Band, count_ooms, effective_ooms, ooms_between, project, year_reaching
from oomlab.forecast.measured import MeasuredFigures, measured_figures
from oomlab.forecast.reference import ReferenceData, load_reference
from oomlab.forecast.trends import TrendFit, fit_log_linear

__all__ = [
    "Band",
    "MeasuredFigures",
    "ReferenceData",
    "TrendFit",
    "count_ooms",
    "effective_ooms",
    "fit_log_linear",
    "load_reference",
    "measured_figures",
    "ooms_between",
    "project",
    "year_reaching",
]

"""Counting the OOMs (Aschenbrenner 2024, "Situational Awareness", ch. I) from sourced data.

- `pace`: the one human pace (tokens/s, hours a day) every human-time figure uses.
- `reference`: the shipped CSV tables (training compute, token prices, hardware, trend
  rates, unhobbling multipliers, energy per token) and the `--data` loader.
- `counting`: OOMs between points, effective compute, projections, "which year".
- `trends`: log-linear fits of dated values → rate per year with an interval.
- `conversions`: tokens ↔ working time, J/token ↔ watts, fleets, prices, clusters.
- `measured`: a run's ledger totals in the same units.
- `plot`: the trendline chart (imports matplotlib; not imported here).

Names below load on first use, so `oomlab.forecast.pace` (which the ledger imports)
does not pull in numpy, scipy or the ledger itself.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Band": "counting",
    "count_ooms": "counting",
    "effective_ooms": "counting",
    "ooms_between": "counting",
    "project": "counting",
    "year_reaching": "counting",
    "MeasuredFigures": "measured",
    "measured_figures": "measured",
    "DEFAULT_PACE": "pace",
    "HumanPace": "pace",
    "ReferenceData": "reference",
    "load_reference": "reference",
    "TrendFit": "trends",
    "fit_log_linear": "trends",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'oomlab.forecast' has no attribute '{name}'")
    return getattr(importlib.import_module(f"oomlab.forecast.{module}"), name)

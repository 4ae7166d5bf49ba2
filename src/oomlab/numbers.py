"""Numbers as oomlab prints them: significant figures, FLOPs, factors, percentages, amounts, human time, JSON.

The one formatter for every table, line and report (terminal, HTML, `oomlab ooms`), and the one rule
for numbers in JSON (`json_safe`). A bottom-floor module: it imports nothing of oomlab, so any layer
may use it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["MISSING", "amount", "factor", "flops", "human_time", "interval", "is_missing", "json_safe", "percent", "sci", "sig"]

MISSING = "n/a"


def is_missing(x: Any) -> bool:
    """None, NaN or ±inf: a number that cannot be printed as one."""
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def sig(x: float | None, digits: int = 3, missing: str = MISSING) -> str:
    """`digits` significant figures (1.23e+09, 0.0123); `missing` for None, NaN and ±inf."""
    return missing if is_missing(x) else f"{x:.{digits}g}"


def sci(x: float | None, digits: int = 2, missing: str = MISSING) -> str:
    """Scientific notation with `digits` decimals (1.23e+09): FLOPs and other wide-ranging counts in tables."""
    return missing if is_missing(x) else f"{x:.{digits}e}"


def flops(x: float) -> str:
    """A compact count of FLOP: two significant figures, no '+' in the exponent (2e25, 1.5e12)."""
    return f"{x:.2g}".replace("e+", "e")


def amount(x: float) -> str:
    """A spend or a limit: whole and grouped from 100 up (12,345), three significant figures below (0.25)."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def percent(x: float | None, digits: int = 1, missing: str = MISSING) -> str:
    """A fraction as a percentage (0.123 -> 12.3%)."""
    return missing if is_missing(x) else f"{100 * x:.{digits}f}%"


def interval(iv: Any, digits: int = 3) -> str:
    """[lo, hi] in significant figures; empty when there is no interval."""
    if not iv or any(v is None for v in iv):
        return ""
    return f"[{sig(iv[0], digits)}, {sig(iv[1], digits)}]"


def factor(ooms: float) -> str:
    """OOMs as the factor they are: 2.7 -> '×501', -3 -> '÷1,000', 12.3 -> '×2.0e12'."""
    sign, size = ("×", ooms) if ooms >= 0 else ("÷", -ooms)
    if size >= 9:
        exponent = math.floor(size)
        return f"{sign}{10 ** (size - exponent):.2g}e{exponent}"
    value = 10**size
    if value < 10:
        return f"{sign}{value:.3g}"
    digits = math.floor(math.log10(value)) - 2
    return f"{sign}{round(value, -digits):,.0f}"


def human_time(minutes: float) -> str:
    """Human working time at 8-hour days and 40-hour weeks."""
    if minutes < 1:
        return f"{minutes * 60:.0f} s"
    if minutes < 60:
        return f"{minutes:.1f} min"
    hours = minutes / 60
    if hours < 8:
        return f"{hours:.1f} h"
    if hours < 40:
        return f"{hours / 8:.1f} days"
    return f"{hours / 40:.1f} weeks"


def json_safe(value: Any) -> Any:
    """Plain JSON values: NaN and ±inf become None, tuples and arrays become lists, numpy scalars Python ones."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value

"""How an unreliable extrapolation looks in `oomlab fit` (Rich) and the HTML report, without a model.

A fit whose law is wrong (an error power law on a curve that levels off) fails its held-out-rung
check; both outputs must say so next to the fit and next to every extrapolated figure.
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import numpy as np
from rich.console import Console
from scipy.special import expit

from oomlab.analysis.run_fitting import RunFits, StrategyFits, _fit_law
from oomlab.report.fit_tables import reach_rows, rich_fit_table, rich_reach_table
from oomlab.report.html import _Figures, _fits_section

LADDER = np.logspace(9, 14, 11)


def plateau_fits() -> RunFits:
    rng = np.random.default_rng(0)
    mean = 0.05 + 0.55 * expit(1.5 * (np.log10(LADDER) - 11.0))  # levels off at 60%
    sign = rng.choice([-1.0, 1.0], size=(200, 1))
    p = mean + 0.5 * sign * np.minimum(mean, 1 - mean)
    data = rng.binomial(20, np.broadcast_to(p, (200, LADDER.size))) / 20
    best = float(data.mean(axis=0).max())
    kw = dict(floor=None, n_boot=150, seed=0, gains=(), targets=(0.72,))  # 72%: past the last rung
    laws = (_fit_law("error-power-law", "FLOPs per problem", LADDER, data, best, **kw),)
    s = StrategyFits("majority", "majority", False, tuple(range(1, 12)), tuple(LADDER),
                     tuple(data.mean(axis=0)), laws)
    return RunFits("run1", "model", "arithmetic", 200, 150, 0, "FLOPs", 0.0, (s,), None, "no difficulty", None)


def test_unreliable_extrapolation_is_marked_in_the_terminal():
    fits = plateau_fits()
    law = fits.strategies[0].laws[0]
    assert law.fit["holdout_check"]["status"] == "failed"
    console = Console(record=True, width=250)
    console.print(rich_fit_table(fits))
    console.print(rich_reach_table(fits))
    text = " ".join(console.export_text().split())
    assert "FAILED, extrapolation unreliable" in text
    assert "assumes the error-power-law curve holds there" in text and "UNRELIABLE" in text
    rows = reach_rows(fits)
    assert rows and all(r.extrapolation == "unreliable" for r in rows if not r.refused)


def test_unreliable_extrapolation_is_marked_in_html(tmp_path: Path):
    html = _fits_section(plateau_fits(), _Figures(tmp_path))
    assert html.count('class="unreliable"') >= 2  # the fit's check and the extrapolated target
    text = unescape(re.sub(r"<[^>]+>", " ", html))
    assert "held-out check" in text and "assumes the error-power-law curve holds there" in text

"""Rich tables of scaling curves: one per strategy, a row per rung of the ladder."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from oomlab.analysis.curves import Curve
from oomlab.analysis.intervals import describe_methods
from oomlab.numbers import human_time, sci


def curve_table(curve: Curve, energy_method: str) -> Table:
    est = "" if curve.energy_measured else " (est.)"
    title = f"[bold]{escape(curve.label)}[/bold]"
    if curve.oracle:
        title += "  [yellow]oracle: reads the reference answer — coverage, not deployable accuracy[/yellow]"
    t = Table(title=title, title_justify="left", caption=f"per problem means; 95% intervals: "
              f"{describe_methods([r.interval for r in curve.rungs])}; energy {energy_method}",
              caption_justify="left")
    for col in ("k", "acc. [95% CI]", "tokens", "FLOPs", f"J{est}", "$", "human"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in curve.rungs:
        t.add_row(
            str(r.k),
            f"{100 * r.accuracy:.1f}% [{100 * r.lo:.0f}, {100 * r.hi:.0f}]",
            f"{r.tokens:,.0f}",
            sci(r.flops),
            f"{r.joules:.3g}",
            f"{r.dollars:.2g}",
            human_time(r.human_minutes),
        )
    return t

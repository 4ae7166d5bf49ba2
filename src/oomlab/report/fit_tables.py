"""The fits of a run as rows of text: one formatting for the terminal (Rich) and the HTML report.

Both outputs are built from these rows, so `oomlab fit` and `oomlab report` print the same
numbers in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.markup import escape
from rich.table import Table

from oomlab.analysis.run_fitting import ORACLE_NOTE, RunFits
from oomlab.numbers import interval, percent, sig


FIT_DIGITS = 4  # significant figures of a fitted number, in both outputs


def fmt(v: float | None, digits: int = FIT_DIGITS) -> str:
    """A fitted number as both outputs print it: `digits` significant figures, n/a for missing."""
    return sig(v, digits)


@dataclass(frozen=True)
class FitRow:
    strategy: str
    label: str
    oracle: bool
    law: str
    x_axis: str
    params: tuple[tuple[str, str, str], ...]  # (name, value, interval)
    r2: str
    rmse: str
    refused: str | None
    check: str = ""  # the held-out-rung check, one line
    check_status: str = ""  # "passed", "failed", "not possible" ("" for a refused fit)


@dataclass(frozen=True)
class ReachRow:
    label: str
    oracle: bool
    law: str
    target: str
    basis: str
    compute: str  # "value [lo, hi] unit"
    refused: str | None
    extrapolation: str = "none"  # "none", "checked", "unreliable", "unchecked"
    note: str | None = None  # the assumption an extrapolated figure rests on


def fit_rows(fits: RunFits) -> list[FitRow]:
    rows = []
    for s in fits.strategies:
        for law in s.laws:
            if law.fit is None:
                rows.append(FitRow(s.strategy, s.label, s.oracle, law.law, law.x_axis, (), "", "", law.refused))
                continue
            f = law.fit
            params = tuple((name, fmt(v), interval(f["intervals"].get(name))) for name, v in f["params"].items())
            params += tuple((name, f"{fmt(v)} (fixed)", "") for name, v in f["fixed"].items())
            gof = f["goodness_of_fit"]
            check = f["holdout_check"]
            rows.append(FitRow(s.strategy, s.label, s.oracle, law.law, law.x_axis, params,
                               fmt(gof["r2"]), fmt(gof["rmse"]), None, check["summary"], check["status"]))
    return rows


def reach_rows(fits: RunFits) -> list[ReachRow]:
    rows = []
    for s in fits.strategies:
        for law in s.laws:
            unit = "samples" if law.law == "coverage" else fits.compute_unit
            for r in law.reach:
                value = "" if r.refused else f"{fmt(r.compute, 3)} {interval((r.lo, r.hi))} {unit}".replace("  ", " ")
                rows.append(ReachRow(s.label, s.oracle, law.law, percent(r.target), r.basis, value, r.refused,
                                     r.extrapolation, r.note))
    return rows


def rung_name(fits: RunFits, strategy: str | None, rung: int | None) -> str:
    """'majority k=4' for a (strategy, rung index) choice; '—' when nothing was affordable."""
    if strategy is None or rung is None:
        return "—"
    ks = next((s.ks for s in fits.strategies if s.strategy == strategy), ())
    k = ks[rung] if rung < len(ks) else rung
    return f"{strategy} k={k}"


def difficulty_table_rows(fits: RunFits) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per budget; a column per difficulty bin, then the overall numbers."""
    d = fits.difficulty
    if d is None:
        return [], []
    labels = [f"{lab} ({n})" for lab, n in zip(d["bins"]["labels"], d["bins"]["counts"])]
    header = [f"budget ({fits.compute_unit})", *labels, "binned accuracy", "best single", "gain", "compute saving"]
    rows = []
    for j, budget in enumerate(d["budgets"]):
        cells = [fmt(budget, 3)]
        for b in range(len(labels)):
            c = d["per_bin"][b][j]
            cells.append(f"{rung_name(fits, c['strategy'], c['rung'])} · {percent(c['accuracy'])}")
        single = d["best_single"][j]
        gain = d["gain"][j]
        saving = d["compute_savings"][j]
        cells += [percent(d["oracle_binned_accuracy"][j]),
                  f"{rung_name(fits, single['strategy'], single['rung'])} · {percent(single['accuracy'])}",
                  "n/a" if gain is None else f"{100 * gain:+.1f} pts",
                  "n/a" if saving is None else f"{saving:.2f}×"]
        rows.append(cells)
    return header, rows


CHECK_CAPTION = ("Held-out check: the law refitted without the last rung predicts it; a measurement outside "
                 "the 95% band marks every extrapolation of that fit unreliable.")
REACH_CAPTION = ("value [95% bootstrap interval]; refused where the fit does not support it. An extrapolated "
                 "value assumes the law holds past the measured rungs, which the bootstrap interval does not "
                 "cover.")
CHECK_STYLE = {"failed": "bold red", "not possible": "dim"}


# ----------------------------------------------------------------------------- Rich
def _label(s_label: str, oracle: bool) -> str:
    return f"{s_label}\n[yellow]{ORACLE_NOTE}[/yellow]" if oracle else s_label


def rich_fit_table(fits: RunFits) -> Table:
    floor = "free" if fits.logistic_floor is None else fmt(fits.logistic_floor)
    t = Table(title=f"[bold]fits[/bold] · run {fits.run_id} · {fits.model_id}", title_justify="left",
              caption=f"intervals: {fits.n_boot} bootstrap refits over {fits.n_problems} problems (seed {fits.seed}); "
                      f"logistic floor {floor}; R² and RMSE on the mean curve. {CHECK_CAPTION}",
              caption_justify="left")
    for col in ("strategy", "law", "parameters [95% interval]", "R²", "RMSE", "held-out check"):
        t.add_column(col, overflow="fold")
    for r in fit_rows(fits):
        law = f"{r.law}\n[dim]vs {r.x_axis}[/dim]"
        if r.refused:
            t.add_row(_label(r.label, r.oracle), law, f"[yellow]refused: {escape(r.refused)}[/yellow]", "", "", "")
        else:
            params = "\n".join(f"{n} = {v} {iv}".rstrip() for n, v, iv in r.params)
            style = CHECK_STYLE.get(r.check_status, "")
            t.add_row(_label(r.label, r.oracle), law, params, r.r2, r.rmse, f"[{style}]{escape(r.check)}[/{style}]"
                      if style else escape(r.check))
    return t


def rich_reach_table(fits: RunFits) -> Table:
    t = Table(title="[bold]compute to reach a target[/bold]", title_justify="left",
              caption=REACH_CAPTION, caption_justify="left")
    for col in ("strategy", "law", "target", "basis", "compute needed"):
        t.add_column(col, overflow="fold")
    for r in reach_rows(fits):
        value = f"[yellow]refused: {escape(r.refused)}[/yellow]" if r.refused else escape(r.compute)
        if r.note:
            style = "bold red" if r.extrapolation == "unreliable" else "yellow"
            value += f"\n[{style}]{escape(r.note)}[/{style}]"
        t.add_row(_label(r.label, r.oracle), r.law, r.target, r.basis, value)
    return t


def rich_difficulty_table(fits: RunFits) -> Table:
    if fits.difficulty is None:
        t = Table(title="[bold]compute-optimal by difficulty[/bold]", title_justify="left")
        t.add_column("refused")
        t.add_row(f"[yellow]{fits.difficulty_refused}[/yellow]")
        return t
    header, rows = difficulty_table_rows(fits)
    d = fits.difficulty
    t = Table(title="[bold]compute-optimal by difficulty[/bold] (bins by pass@1, hardest first)", title_justify="left",
              caption=f"pass@1: {fits.pass1_source}; strategies: {', '.join(d['strategies'])}"
                      + (f" (oracles left out: {', '.join(d['excluded_oracles'])})" if d["excluded_oracles"] else "")
                      + f". {d['note']}", caption_justify="left")
    for col in header:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*row)
    return t


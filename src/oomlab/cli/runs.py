"""`oomlab runs`, `oomlab show` and `oomlab plot`: what the database holds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from oomlab.cli.app import app
from oomlab.cli.common import console, db_option, json_option, open_store, print_json, run_argument
from oomlab.report.waste import waste_line


@app.command()
def runs(
    db: Path = db_option(),
    as_json: bool = json_option(),
) -> None:
    """List the runs in the database, oldest first."""
    store = open_store(db)
    rows = store.runs()
    if as_json:
        print_json([{"id": r.id, "created_at": r.created_at, "status": r.status, "task": r.task,
                     "model_id": r.model_id, "strategies": r.config.get("strategies"), "n": r.config.get("n"),
                     "problems": r.config.get("problems"), "samples_drawn": r.samples_drawn,
                     "samples_reused": r.samples_reused} for r in rows])
        return
    models = {r.model_id.split("@")[0] for r in rows}
    one_model = len(models) == 1
    t = Table(title=f"runs in {db}" + (f" · model {models.pop()}" if one_model else ""), box=box.SIMPLE_HEAD)
    narrow = console.width < 110  # at 80 columns the date goes, so the id and the strategies keep their room
    cols = ["run"] + ([] if narrow else ["created"]) + ["status", "task"] + ([] if one_model else ["model"]) + [
        "strategies", "N", "probs", "drawn", "reused"]
    for col in cols:
        # the id and status never shrink: an id cut at 80 columns could not be typed back
        fixed = {"run": 8, "status": 11, "created": 16, "task": 10}.get(col)
        if col == "strategies":  # folds its lines, never its header
            t.add_column(col, min_width=len(col), overflow="fold")
            continue
        t.add_column(col, no_wrap=fixed is not None or col in ("N", "probs", "drawn", "reused"), min_width=fixed,
                     overflow="fold",
                     justify="right" if col in ("N", "probs", "drawn", "reused") else "left")
    for r in rows:
        cells = [r.id] + ([] if narrow else [r.created_at.replace("T", " ")[:16]]) + [r.status, r.task]
        if not one_model:
            cells.append(r.model_id.split("@")[0])
        cells += [", ".join(r.config.get("strategies", [])), str(r.config.get("n")), str(r.config.get("problems")),
                  str(r.samples_drawn), str(r.samples_reused)]
        t.add_row(*cells)
    console.print(t)


@app.command()
def show(
    run_id: Optional[str] = run_argument(),
    db: Path = db_option(),
    as_json: bool = json_option(),
) -> None:
    """Print a run's tables again (accuracy ± CI and cost per rung, per strategy)."""
    from oomlab.analysis.curves import run_curves
    from oomlab.report.tables import curve_table

    store = open_store(db)
    run_id = store.resolve_run(run_id)
    info = store.run(run_id)
    curves = run_curves(store, run_id)
    covered, total = store.coverage(run_id)
    waste = store.waste(run_id)
    if as_json:
        print_json({"run_id": run_id, "status": info.status, "complete": info.finished,
                    "problems_covered": covered, "problems": total, "energy_method": info.energy_method,
                    "totals": store.run_totals(run_id).__dict__, "waste": waste.__dict__,
                    "curves": [c.to_dict() for c in curves]})
        return
    if not info.finished:
        console.print(f"[yellow]run {run_id} is incomplete ({info.status}): it covers {covered} of {total} problems "
                      f"so far[/yellow]")
    for c in curves:
        console.print(curve_table(c, info.energy_method))
    if waste.requests:
        console.print(waste_line(waste))


@app.command()
def plot(
    run_id: Optional[str] = run_argument(),
    output: Path = typer.Option(Path("curve.png"), "-o", "--output", help="PNG (or PDF/SVG) to write."),
    db: Path = db_option(),
) -> None:
    """Accuracy vs log10 FLOPs per problem: one line per strategy, oracle lines dashed, 95% CI bands."""
    from oomlab.analysis.curves import run_curves
    from oomlab.report.plot import plot_curves

    store = open_store(db)
    run_id = store.resolve_run(run_id)
    info = store.run(run_id)
    path = plot_curves(run_curves(store, run_id), output, title=f"{info.task} · {info.model_id} · run {run_id}",
                       energy_note=f"energy {info.energy_method}")
    console.print(f"plot: [bold]{path}[/bold]")

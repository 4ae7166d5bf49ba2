"""`oomlab ooms --run RUN_ID`: a measured run beside the reference figures (the app's callback)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from oomlab.cli.common import console, db_option, print_json, run_totals
from oomlab.cli.ooms.common import (
    DataOpt,
    DaysPerWeekOpt,
    HoursPerDayOpt,
    HumanTpsOpt,
    JsonOpt,
    META_KEY,
    OomsOptions,
    PaceOpt,
    app,
    command_pace,
    figure,
    print_pace,
    reference_data,
)
from oomlab.forecast import conversions as conv
from oomlab.forecast.measured import MeasuredFigures, measured_figures
from oomlab.forecast.pace import HumanPace, tokens_to_human_time
from oomlab.forecast.reference import ReferenceData

# ---------------------------------------------------------------- measured run (callback)


@app.callback(invoke_without_command=True)
def ooms(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option("--run", help="A run (id, unique prefix or 'latest'): show its measured figures beside the reference ones.")] = None,
    lab: Annotated[Path | None, typer.Option("--lab", help="A lab's database, directory or summary.json (`oomlab lab run`): "
                                             "its measured compute-equivalent gains beside the reference unhobbling "
                                             "multipliers.")] = None,
    db: Path = db_option("The SQLite database a sweep wrote."),
    data: DataOpt = None,
    json_out: JsonOpt = False,
    pace: PaceOpt = None,
    human_tokens_per_second: HumanTpsOpt = None,
    hours_per_day: HoursPerDayOpt = None,
    days_per_week: DaysPerWeekOpt = None,
) -> None:
    """Count the OOMs; with --run and no command, show a measured run beside the reference figures.

    The pace flags here apply to every command after them; a command's own pace flags win.
    """
    ctx.meta[META_KEY] = OomsOptions(run, db, list(data or []), json_out,
                                   (pace, human_tokens_per_second, hours_per_day, days_per_week))
    human = command_pace(ctx)  # a bad pace fails here, before any command runs
    if ctx.invoked_subcommand is not None:
        return
    if lab is not None:
        _print_lab(ctx, lab, json_out)
        if run is None:
            return
    if run is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    run, totals = run_totals(db, run)  # an id, a unique prefix of one, or 'latest'
    figures = measured_figures(totals, human)
    ref = reference_data(ctx, None)
    rows = _reference_rows(ref, human)
    if json_out:
        print_json({"run_id": run, "run": figures.as_dict(), "reference": rows, "human_pace": human.as_dict()})
        return
    _print_measured(run, figures, rows, human)


def _reference_rows(ref: ReferenceData, pace: HumanPace) -> list[dict[str, Any]]:
    """Published and seed figures in the same units as a measured run, every watt at the one `pace`."""
    rows: list[dict[str, Any]] = []
    for e in ref.energy:
        rows.append({"figure": e.label, "joules_per_token": e.joules_per_token,
                     "human_equivalent_watts": conv.human_equivalent_watts(e.joules_per_token, pace),
                     "tokens_per_second": None, "usd_per_million_tokens": None,
                     "energy": "measured" if e.measured else "estimated", "source": e.source})
    fleet = conv.fleet_estimate(pace=pace)
    rows.append({"figure": f"seed: {conv.SEED_GPUS} GPUs × {conv.SEED_WATTS_PER_GPU:g} W, {conv.SEED_STREAMS} streams "
                           f"at {conv.SEED_SPEED_VS_HUMAN:g}× human",
                 "joules_per_token": fleet.joules_per_token,
                 "human_equivalent_watts": conv.human_equivalent_watts(fleet.joules_per_token, pace),
                 "tokens_per_second": conv.SEED_SPEED_VS_HUMAN * pace.tokens_per_second, "usd_per_million_tokens": None,
                 "energy": "estimated", "source": "seed estimate (issue #5): a serving fleet"})
    price = conv.energy_from_price(pace=pace)
    rows.append({"figure": f"seed: ${conv.SEED_USD_PER_GPU_HOUR:g}/GPU-h at {conv.SEED_WATTS_PER_GPU:g} W, "
                           f"${conv.SEED_USD_PER_MILLION_TOKENS:g}/M tokens",
                 "joules_per_token": price.joules_per_token,
                 "human_equivalent_watts": price.human_equivalent_watts,  # = J/token × the pace's tokens/s
                 "tokens_per_second": None, "usd_per_million_tokens": price.usd_per_million_tokens,
                 "energy": "estimated",
                 "source": "seed estimate (issue #5): energy behind a token price, all of it GPU rental"})
    rows.append({"figure": f"human brain, {conv.HUMAN_BRAIN_WATTS:g} W",
                 "joules_per_token": conv.joules_per_token_at(conv.HUMAN_BRAIN_WATTS, pace),
                 "human_equivalent_watts": conv.HUMAN_BRAIN_WATTS, "tokens_per_second": pace.tokens_per_second,
                 "usd_per_million_tokens": None, "energy": "estimated",
                 "source": "conventional ≈20 W; seed essay 10–30 W"})
    for capability in ref.capabilities():
        latest = ref.price_series(capability)[-1]
        blend = f", {latest.blend}" if latest.blend else ""
        rows.append({"figure": f"API price, {capability} level ({latest.model}, {latest.date}{blend})",
                     "joules_per_token": None, "human_equivalent_watts": None, "tokens_per_second": None,
                     "usd_per_million_tokens": latest.usd_per_million_tokens, "energy": "—",
                     "source": latest.source})
    return rows


def _print_measured(run: str, f: MeasuredFigures, rows: list[dict[str, Any]], pace: HumanPace) -> None:
    table = Table(title=f"Run {escape(run)} beside the reference figures "
                        f"(W at human pace = J/token × {pace.tokens_per_second:.3g} tokens/s)")
    table.add_column("figure", overflow="fold", ratio=1)
    for name in ("J/token", "W at human pace", "tokens/s", "$/M tokens"):
        table.add_column(name, overflow="fold", justify="right")
    table.add_column("energy", no_wrap=True)
    table.add_column("ref", no_wrap=True)
    table.add_row(f"[bold]this run[/] ({escape(f.model_id or 'model ?')}, {f.samples} samples)", figure(f.joules_per_token),
                  figure(f.human_equivalent_watts), figure(f.tokens_per_second), figure(f.usd_per_million_tokens),
                  f"[bold]{f.energy_label}[/]", "")
    sources: list[str] = []
    for r in rows:
        if r["source"] not in sources:
            sources.append(r["source"])
        table.add_row(escape(r["figure"]), figure(r["joules_per_token"]), figure(r["human_equivalent_watts"]),
                      figure(r["tokens_per_second"]), figure(r["usd_per_million_tokens"]), r["energy"],
                      str(sources.index(r["source"]) + 1))
    console.print(table)
    for i, source in enumerate(sources, 1):
        console.print(f"[dim]{i}. {escape(source)}[/]")
    console.print(f"{f.completion_tokens:g} completion tokens = "
                  f"{tokens_to_human_time(f.completion_tokens, pace).phrase()} of human work.")
    print_pace(pace)
    if not f.energy_measured:
        console.print("[yellow]This run's energy is an estimate from a configured device power, not a meter reading.[/]")


# ---------------------------------------------------------------- the lab's measured gains (--lab)


def _print_lab(ctx: typer.Context, path: Path, json_out: bool) -> None:
    """The reference unhobbling multipliers, and beside them what the lab measured on its own task."""
    from oomlab.lab.summary import load_summary, unhobbling_rows

    summary = load_summary(path)
    ref = reference_data(ctx, None)
    multipliers = {m.id: m for m in ref.multipliers}
    rows = unhobbling_rows(summary)
    label = summary.get("label", "measured on the lab task")
    if json_out:
        print_json({"label": label, "measured": rows,
                    "reference": [{"id": m.id, "low": m.low, "best": m.best, "high": m.high, "source": m.source}
                                  for m in ref.multipliers]})
        return
    table = Table(title="Unhobbling: reference multipliers, and compute-equivalent gains " + escape(label))
    table.add_column("enhancement", overflow="fold", ratio=2)
    table.add_column("reference ×", justify="right")
    table.add_column("train FLOPs", justify="right")
    table.add_column("accuracy (greedy)", justify="right")
    table.add_column("measured CEG [95%]", overflow="fold", ratio=1)
    table.add_column("test cost", justify="right")
    shown = set()
    for r in rows:
        m = multipliers.get(r["reference"] or "")
        reference = ""
        if m is not None and m.id not in shown:
            shown.add(m.id)
            reference = f"{m.best:g}" if m.low == m.high else f"{m.low:g}-{m.high:g}"
        name = escape(r["enhancement"]) + (" [oracle: coverage]" if r["oracle"] else "")
        table.add_row(name, reference, f"{r['train_flops']:.1e}",
                      f"{100 * r['accuracy']:.1f}% ({100 * r['baseline_accuracy']:.1f}%)", escape(r["ceg"]),
                      f"{r['test_cost']:.2g}×")
    for m in ref.multipliers:
        if m.id not in shown:
            band = f"{m.best:g}" if m.low == m.high else f"{m.low:g}-{m.high:g}"
            table.add_row(escape(m.id.replace("_", " ")), band, "", "", "[dim]not measured by the lab[/]", "")
    console.print(table)
    for m in ref.multipliers:
        console.print(f"[dim]reference {escape(m.id)}: {escape(m.source)}[/]")
    console.print(f"[dim]Measured: {escape(label)}; a CEG is the factor of extra training compute the greedy "
                  "baseline (its best model at that much compute) needs to match; bounds marked past the ladder "
                  "are not extrapolated.[/]")

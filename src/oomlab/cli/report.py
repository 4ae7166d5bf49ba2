"""`oomlab fit`, `oomlab compare`, `oomlab exchange` and `oomlab report`: what the curves say.

`fit` and `report` both take their numbers from `oomlab.analysis.run_fitting.fit_run`, so the
terminal, `--json` and the HTML report agree to the last digit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from oomlab.cli.app import app
from oomlab.cli.common import console, db_option, json_option, open_store, print_json, run_argument
from oomlab.errors import ConfigError

JSON_OPTION_HELP = "Print as JSON (NaN as null)."
N_BOOT_OPTION = typer.Option(1000, "--n-boot", min=0, help="Bootstrap refits over problems (seeded: same numbers every time).")
UNIT_OPTION = typer.Option(None, "--unit", help="Test-time compute unit for the exchange rate: flops or tokens "
                           "(default: FLOPs when every run records model facts; runs in different units are refused).")
FLOOR_OPTION = typer.Option("0", "--floor", help="Logistic floor: a number in [0, 1] (default 0: exact answers are not "
                            "guessed) or 'free' to fit it (needs one more rung).")


def _floor(value: str) -> float | None:
    if value.strip().lower() == "free":
        return None
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"--floor must be a number in [0, 1] or 'free', got '{value}'") from None


@app.command()
def fit(
    run_id: Optional[str] = run_argument(),
    db: Path = db_option(),
    as_json: bool = json_option(JSON_OPTION_HELP),
    n_boot: int = N_BOOT_OPTION,
    floor: str = FLOOR_OPTION,
    target: list[float] = typer.Option([], "--target", help="Also the compute to reach this accuracy (0-1), repeatable."),
) -> None:
    """Fit each strategy's scaling curve: logistic in log10 FLOPs, coverage law for oracles, error power law.

    Prints parameters with bootstrap intervals, R² and RMSE, the compute to reach targets above the best
    measured accuracy, and the compute-optimal strategy per difficulty bin. A fit the data do not support
    is refused with the reason, never forced. Each fit is also refitted without its last rung to predict
    it: a measurement outside that band marks the fit's extrapolations unreliable, and every
    extrapolated figure says that it assumes the law holds.
    """
    from oomlab.analysis.run_fitting import fit_run
    from oomlab.report.fit_tables import rich_difficulty_table, rich_fit_table, rich_reach_table

    store = open_store(db)
    run_id = store.resolve_run(run_id)
    fits = fit_run(store, run_id, n_boot=n_boot, logistic_floor=_floor(floor), targets=target)
    if as_json:
        print_json(fits.to_dict())
        return
    console.print(rich_fit_table(fits))
    console.print(rich_reach_table(fits))
    console.print(rich_difficulty_table(fits))


@app.command()
def compare(
    run_a: str = typer.Argument(..., metavar="RUN_A", help="One run (typically the small model with test-time "
                                "compute): id, unique prefix or 'latest'."),
    run_b: str = typer.Argument(..., metavar="RUN_B", help="The other run (typically the larger model; its greedy "
                                "pass@1 is used): id, unique prefix or 'latest'."),
    train_tokens_a: Optional[float] = typer.Option(None, "--train-tokens-a", help="Training tokens of run A's model "
                                                   "(model card; e.g. 6e12 for Gemma 3 270M)."),
    train_tokens_b: Optional[float] = typer.Option(None, "--train-tokens-b", help="Training tokens of run B's model."),
    params_a: Optional[float] = typer.Option(None, "--params-a", help="Override run A's parameter count (default: "
                                             "the model facts recorded with the run)."),
    params_b: Optional[float] = typer.Option(None, "--params-b", help="Override run B's parameter count."),
    ratio: list[float] = typer.Option([], "--ratio", help="R = inference tokens / pretraining tokens, repeatable "
                                      "(default 0.1, 1, 10)."),
    strategy: list[str] = typer.Option([], "--strategy", "-s", help="Small model's strategies to compare "
                                       "(default: every non-oracle one)."),
    large_strategy: str = typer.Option("greedy", "--large-strategy", help="The large model's strategy; its "
                                       "cheapest rung is used (pass@1)."),
    db: Path = db_option(),
    as_json: bool = json_option(JSON_OPTION_HELP),
    n_boot: int = N_BOOT_OPTION,
) -> None:
    """Compute-matched comparison (Snell et al. 2024, arXiv 2408.03314, §7): at equal total FLOPs
    (6·N·D training + 2·N per inference token over the deployment), does the smaller model with
    test-time compute beat the larger model's greedy answer?

    The smaller model (fewer parameters) spends what the larger one's training and inference cost;
    R sets how heavily the models are used. Training tokens come from the model cards.
    """
    from oomlab.analysis.compare import compare_runs

    if train_tokens_a is None or train_tokens_b is None:
        raise ConfigError("give both --train-tokens-a and --train-tokens-b (training tokens from the model cards); "
                          "the FLOPs accounting needs them")
    store = open_store(db)
    result = compare_runs(store, run_a, run_b, train_tokens_a=train_tokens_a, train_tokens_b=train_tokens_b,
                          params_a=params_a, params_b=params_b, ratios=ratio, strategies=strategy,
                          large_strategy=large_strategy, n_boot=n_boot)
    out = result.to_dict()
    if as_json:
        print_json(out)
        return
    rows, same_problems = out["comparisons"], result.paired
    t = Table(title=f"[bold]compute-matched[/bold]: {escape(result.small.spec.name)} + test-time compute vs "
                    f"{escape(result.large.spec.name)} {escape(large_strategy)} ({100 * result.large_pass1:.1f}%)",
              title_justify="left", caption="Snell et al. 2024 §7: equal training + inference FLOPs; R = inference / "
              "pretraining tokens" + ("; paired bootstrap over the same problems" if same_problems else
                                      "; different problems: unpaired two-sample interval (MOVER)")
              + "; a winner only where the interval excludes 0", caption_justify="left")
    for col in ("strategy", "R", "small tokens/query", "×", "small acc", "large acc", "difference [95%]", "winner"):
        t.add_column(col, overflow="fold")
    for r in rows:
        label = r["label"] + ("\n[yellow]oracle — coverage, not deployable accuracy[/yellow]" if r["oracle"] else "")
        if r["refused"]:
            t.add_row(label, f"{r['ratio']:g}", f"[yellow]refused: {r['refused']}[/yellow]", "", "", "", "", "")
            continue
        iv = r["difference_interval"]
        diff = "n/a" if r["difference"] != r["difference"] else f"{100 * r['difference']:+.1f} pts"
        if iv:
            diff += f" [{100 * iv[0]:+.1f}, {100 * iv[1]:+.1f}]"
        small_acc = "n/a" if r["small_accuracy"] != r["small_accuracy"] else f"{100 * r['small_accuracy']:.1f}%"
        t.add_row(label, f"{r['ratio']:g}", f"{r['small_tokens_affordable']:.3g} ({r['status']})",
                  f"{r['test_time_multiplier']:.3g}", small_acc, f"{100 * r['large_accuracy']:.1f}%", diff, r["winner"])
    console.print(t)


@app.command()
def exchange(
    run_ids: list[str] = typer.Argument(..., metavar="RUN", help="Two or more runs of models with different "
                                        "training compute: ids, unique prefixes or 'latest'."),
    train_flops: list[float] = typer.Option([], "--train-flops", help="Training FLOPs of each run's model, in the "
                                            "order of the runs (repeat the option)."),
    strategy: Optional[str] = typer.Option(None, "--strategy", "-s", help="Strategy whose curve stands for each "
                                           "run (default: the non-oracle one with the most rungs)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write the two-panel figure (PNG)."),
    db: Path = db_option(),
    as_json: bool = json_option(JSON_OPTION_HELP),
    n_boot: int = N_BOOT_OPTION,
    unit: Optional[str] = UNIT_OPTION,
) -> None:
    """The train↔test exchange rate (Jones 2021, arXiv 2104.03113, §IV-C): the slope of iso-accuracy
    curves of log10 test-time compute against log10 training FLOPs, over several runs.

    Test-time compute is FLOPs when every run records model facts; runs in different units are
    refused (--unit tokens counts every run in tokens)."""
    from oomlab.analysis.exchange_rate import exchange_rate
    from oomlab.report.exchange_plots import plot_two_panel
    from oomlab.analysis.run_fitting import exchange_models

    if len(train_flops) != len(run_ids):
        raise ConfigError(f"give --train-flops once per run ({len(run_ids)} runs, {len(train_flops)} values)")
    store = open_store(db)
    run_ids = [store.resolve_run(r) for r in run_ids]
    models, used = exchange_models(store, run_ids, train_flops, strategy=strategy, unit=unit)
    result = exchange_rate(models, n_boot=n_boot)
    if plot is not None:
        plot_two_panel(models, str(plot))
    if as_json:
        print_json(result.to_dict() | {"plot": None if plot is None else str(plot)})
        return
    lo, hi = result.slope_interval
    console.print(f"iso-accuracy slope [bold]{result.slope:.3g}[/bold] [{lo:.3g}, {hi:.3g}] ({result.interval_method}): "
                  f"{result.rate_text} ({result.n_points} points over {len(result.targets)} targets; "
                  f"test-time compute in {used} per problem)", highlight=False)
    for note in result.notes:
        console.print(f"[yellow]{note}[/yellow]")
    if plot is not None:
        console.print(f"plot: [bold]{plot}[/bold]")


@app.command()
def report(
    run_ids: Optional[list[str]] = typer.Argument(None, metavar="RUN", show_default=False,
                                                  help="One or more runs: ids, unique prefixes or 'latest' "
                                                       "(default: the latest run)."),
    output: Path = typer.Option(Path("report.html"), "-o", "--output", help="HTML file to write."),
    db: Path = db_option(),
    n_boot: int = N_BOOT_OPTION,
    floor: str = FLOOR_OPTION,
    train_flops: list[float] = typer.Option([], "--train-flops", help="Training FLOPs of each run's model, in run "
                                            "order: adds the two-panel train/test figure and the exchange rate."),
    strategy: Optional[str] = typer.Option(None, "--strategy", "-s", help="With --train-flops: the strategy whose "
                                           "curve stands for each run."),
    as_json: bool = json_option("Print what was written as JSON."),
    unit: Optional[str] = UNIT_OPTION,
) -> None:
    """Write one self-contained HTML report: plots inline, per-strategy tables, the books, the fits
    (the same numbers as `oomlab fit`), difficulty, and each run's configuration. Readable offline."""
    from oomlab.report.html import render_report

    store = open_store(db)
    run_ids = [store.resolve_run(r) for r in (run_ids or [None])]
    html, summary = render_report(store, run_ids, n_boot=n_boot, logistic_floor=_floor(floor),
                                  train_flops=train_flops, strategy=strategy, unit=unit)
    if not output.parent.exists():
        raise ConfigError(f"output folder does not exist: {output.parent}")
    output.write_text(html, encoding="utf-8")
    if as_json:
        print_json({"output": str(output), "bytes": len(html.encode()), **summary})
        return
    console.print(f"report: [bold]{output}[/bold] ({len(html.encode()) / 1e6:.1f} MB, {summary['figures']} figures)")

"""`oomlab sweep` and `oomlab demo`: run a test-time compute sweep and show its curves."""

from __future__ import annotations

import json
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from oomlab.cli.app import app, console, err_console
from oomlab.errors import ConfigError
from oomlab.ledger import LedgerTotals
from oomlab.report.waste import waste_line
from oomlab.store import DEFAULT_DB, RunBusy, Store
from oomlab.sweep import Sweep, SweepConfig, parse_spec


def load_config_file(path: Path) -> dict[str, Any]:
    """A sweep written as YAML or TOML; keys are SweepConfig's fields."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text()
    if path.suffix == ".toml":
        data = tomllib.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text) or {}
    valid = {f.name for f in fields(SweepConfig)}
    unknown = sorted(set(data) - valid)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {', '.join(unknown)}; valid keys: {', '.join(sorted(valid))}")
    return data


def _options(pairs: list[str], what: str) -> dict[str, Any]:
    if not pairs:
        return {}
    _, opts = parse_spec("x:" + ",".join(pairs))
    return opts


def run_and_report(config: SweepConfig, db: Path, plot: Optional[Path], as_json: bool, resume: Optional[str] = None,
                   wait: bool = True) -> str:
    from oomlab.analysis.curves import run_curves
    from oomlab.report.plot import plot_curves
    from oomlab.report.tables import curve_table

    store = Store(db)
    with console.status(f"loading backend [bold]{config.backend}[/bold] ..."):
        sweep = Sweep(config, store)
    if not as_json:
        console.print(f"model [bold]{sweep.backend.model_id}[/bold] · task [bold]{config.task}[/bold] · "
                      f"N={config.n} · {config.problems} problems · energy {sweep.meter.method}")
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=as_json) as bar:
        job = bar.add_task("sweeping", total=config.problems * len(config.strategies))

        def progress(done: int, total: int, key: str) -> None:
            bar.update(job, completed=done, total=total, description=f"sweeping · {key}")

        if hasattr(sweep.backend, "on_status"):  # a silent server's countdown, shown where the user looks
            sweep.backend.on_status = lambda line: bar.update(job, description=line)

        def waiting(busy: RunBusy) -> None:
            err_console.print(f"[yellow]{busy.describe()}; waiting for it (Ctrl-C to stop)[/yellow]")

        try:
            result = sweep.run(resume=resume, progress=progress, wait=wait, on_wait=waiting)
        finally:
            sweep.backend.close()
    info = store.run(result.run_id)
    curves = run_curves(store, result.run_id)
    plot_path = None
    if plot is not None:
        plot_path = plot_curves(curves, plot, title=f"{config.task} · {info.model_id} · run {result.run_id}",
                                energy_note=f"energy {info.energy_method}")
    if as_json:
        totals = store.run_totals(result.run_id)
        print(json.dumps({"run_id": result.run_id, "resumed": result.resumed, "samples_drawn": result.drawn,
                          "samples_reused": result.reused, "run_samples_drawn": info.samples_drawn,
                          "run_samples_reused": info.samples_reused, "waste": store.waste(result.run_id).__dict__,
                          "plot": str(plot_path) if plot_path else None,
                          "totals": totals.__dict__ | {"energy_method": info.energy_method},
                          "curves": [c.to_dict() for c in curves]}, indent=2))
        return result.run_id
    for c in curves:
        console.print(curve_table(c, info.energy_method))
    totals = store.run_totals(result.run_id)
    verb = "resumed" if result.resumed else "run"
    waste = store.waste(result.run_id)
    if waste.requests:
        console.print(waste_line(waste))
    console.print(
        f"{verb} [bold cyan]{result.run_id}[/bold cyan] · {info.samples_drawn} samples drawn, {info.samples_reused} reused from cache · "
        f"{totals.tokens:,.0f} tokens · {totals.flops:.2e} FLOPs · {books_extras(totals, info.energy_method)}"
        f"${totals.dollars:.4f} ({info.pricing.describe()}) · db {db}"
    )
    if plot_path:
        console.print(f"plot: [bold]{plot_path}[/bold]")
    return result.run_id


def books_extras(totals: LedgerTotals, energy_method: str) -> str:
    """Energy (or why it is unknown), and what a hosted API bills and the waits, where they differ from the rest."""
    energy = f"{totals.joules:.0f} J ({energy_method})" if totals.joules == totals.joules else f"energy {energy_method}"
    parts = [energy]
    if abs(totals.billed_prompt_tokens - totals.prompt_tokens) > 0.5:
        parts.append(f"{totals.billed_prompt_tokens:,.0f} prompt tokens billed (each request's, less cached)")
    if totals.wait_seconds > 0.05:
        parts.append(f"{totals.wait_seconds:.1f} s waiting (backoff, queueing; not charged)")
    return " · ".join(parts) + " · "


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--ladder takes numbers separated by commas, got '{text}'") from None
    return int(value) if value.is_integer() else value


@app.command()
def sweep(
    task: Optional[str] = typer.Option(None, "--task", "-t", help="Task name: arithmetic, gsm8k, jsonl, ... (see `oomlab tasks`)."),
    strategy: Optional[list[str]] = typer.Option(
        None, "--strategy", "-s",
        help="Strategy, repeatable; options after a colon: majority, best-of-n, best-of-n:scorer=logprob, sample:temperature=1.0.",
    ),
    n: Optional[int] = typer.Option(None, "--n", "-n", help="N: samples drawn per problem; every rung k <= N is estimated from this one draw."),
    ladder: Optional[str] = typer.Option(None, help="Budget rungs, comma-separated: samples (default 1,2,4,...,N), or compute per problem with --budget-unit."),
    budget_unit: Optional[str] = typer.Option(
        None, help="samples (default), tokens or flops: with tokens/flops every strategy's knob is calibrated so all sit at the same compute.",
    ),
    problems: Optional[int] = typer.Option(None, "--problems", "-p", help="Number of problems."),
    seed: Optional[int] = typer.Option(None, help="Seed for problems and samples."),
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="llamacpp (embedded, default) or openai (any OpenAI-compatible server)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="llamacpp: a GGUF path (default: embedded Gemma 3 270M); openai: the model name."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="openai backend: e.g. http://127.0.0.1:8000/v1 (vLLM, SGLang, llama.cpp server)."),
    task_option: list[str] = typer.Option([], "--task-option", "-T", help="key=value passed to the task, e.g. -T path=data/gsm8k.jsonl."),
    backend_option: list[str] = typer.Option([], "--backend-option", "-B", help="key=value passed to the backend, e.g. -B n_params=7e9."),
    usd_per_hour: Optional[float] = typer.Option(None, help="Dollars per hour of device time (default 2.0, a user setting)."),
    usd_per_m_prompt: Optional[float] = typer.Option(None, help="Dollars per million prompt tokens (overrides --usd-per-hour)."),
    usd_per_m_completion: Optional[float] = typer.Option(None, help="Dollars per million completion tokens."),
    tdp_watts: Optional[float] = typer.Option(None, help="Device TDP for the energy estimate when no counter is readable (50% of it is charged)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="A sweep as YAML or TOML; flags override it."),
    db: Path = typer.Option(Path(DEFAULT_DB), "--db", help="SQLite database (created if missing)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write the accuracy-vs-FLOPs plot here."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue this run id (an unfinished identical sweep is resumed automatically)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="If another live process is writing this run: wait for it (default), or stop with one line."),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Run a sweep: strategies × budget ladder on a task; print a table per strategy and the run id.

    Samples are cached in the database by (model, prompt, sampling parameters, seed): re-running
    costs nothing, and a sweep killed mid-way resumes where it stopped.
    """
    data: dict[str, Any] = load_config_file(config) if config else {}
    flags = {
        "task": task, "n": n, "problems": problems, "seed": seed, "backend": backend,
        "strategies": list(strategy) if strategy else None,
        "ladder": [_number(x) for x in ladder.split(",")] if ladder else None,
        "budget_unit": budget_unit,
        "usd_per_hour": usd_per_hour, "usd_per_m_prompt": usd_per_m_prompt,
        "usd_per_m_completion": usd_per_m_completion, "tdp_watts": tdp_watts,
    }
    data.update({k: v for k, v in flags.items() if v is not None})
    data.setdefault("task_options", {}).update(_options(task_option, "task"))
    bopts = data.setdefault("backend_options", {})
    bopts.update(_options(backend_option, "backend"))
    if model:
        bopts["model"] = model
    if base_url:
        bopts["base_url"] = base_url
    cfg = SweepConfig(**data)
    if plot is None and not as_json:
        plot = Path(f"oomlab-{cfg.task}.png")
    run_and_report(cfg, db, plot, as_json, resume, wait)


@app.command()
def demo(
    db: Path = typer.Option(Path(DEFAULT_DB), "--db", help="SQLite database (created if missing)."),
    plot: Path = typer.Option(Path("oomlab-demo.png"), "--plot", help="Where to write the plot."),
    problems: int = typer.Option(100, "--problems", "-p", help="Number of arithmetic problems."),
    n: int = typer.Option(16, "--n", "-n", help="Samples per problem."),
) -> None:
    """The main job: greedy, majority voting and best-of-n (oracle) on arithmetic with the embedded model."""
    cfg = SweepConfig(problems=problems, n=n, strategies=["greedy", "majority", "best-of-n", "best-of-n:scorer=logprob"])
    run_and_report(cfg, db, plot, as_json=False)

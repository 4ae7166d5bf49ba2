"""`oomlab sweep` and `oomlab demo`: run a test-time compute sweep and show its curves."""

from __future__ import annotations

import time
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from oomlab.caps import Caps
from oomlab.cli.app import app
from oomlab.cli.common import console, db_option, err_console, json_option, open_store, print_json
from oomlab.errors import ConfigError, DatasetError
from oomlab.ledger import LedgerTotals
from oomlab.report.waste import waste_line
from oomlab.store import RunBusy
from oomlab.sweep import Sweep, SweepConfig, check_fields, parse_ladder, parse_spec
from oomlab.tasks.base import create_task


CAP_HELP = ("The sweep stops drawing when its books reach the cap; rerun with --resume and a higher cap to "
            "continue.")


def load_config_file(path: Path) -> dict[str, Any]:
    """A sweep written as YAML or TOML; keys are SweepConfig's fields, values of their types.

    Anything wrong with the file (its syntax, an unknown key, a value of the wrong type) is one
    ConfigError naming the file, and the line where the parser knows it.
    """
    if path.is_dir():
        raise ConfigError(f"--config {path} is a directory; give a .yaml or .toml file")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected keys and values (task: ..., n: ...), got a {type(data).__name__}; "
                          f"valid keys: {', '.join(sorted(f.name for f in fields(SweepConfig)))}")
    return check_fields(data, f"{path}: ")


def _options(pairs: list[str], what: str) -> dict[str, Any]:
    """-T/-B key=value pairs (repeatable; one may hold several, comma-separated) as a dict."""
    if not pairs:
        return {}
    flag = {"task": "-T", "backend": "-B"}[what]
    for pair in pairs:
        if "=" not in pair or not pair.partition("=")[0].strip():
            raise ConfigError(f"{flag} takes key=value, got '{pair}' (e.g. {flag} "
                              f"{'path=data/test.jsonl' if what == 'task' else 'n_threads=4'})")
    _, opts = parse_spec("x:" + ",".join(pairs))
    return opts


def _merge(data: dict[str, Any], key: str, extra: dict[str, Any]) -> dict[str, Any]:
    base = data.get(key) or {}
    return {**base, **extra}


def fit_problems(config: SweepConfig) -> None:
    """Refuse an empty dataset, and say once when it has fewer problems than asked for: the run then
    records the real count. Reads the dataset now, so a bad file is reported before the model loads."""
    task = create_task(config.task, **config.task_options)
    available = len(task.problems(config.problems, config.seed))
    if available == 0:
        where = f" ({task.path})" if getattr(task, "path", None) else ""
        raise DatasetError(f"task '{config.task}' has no problems{where}: nothing to sweep")
    if available < config.problems:
        err_console.print(f"[yellow]warning: task '{config.task}' has {available} problems, fewer than --problems "
                          f"{config.problems}; sweeping all {available}[/yellow]", highlight=False, soft_wrap=True)
        config.problems = available


def run_and_report(config: SweepConfig, db: Path, plot: Optional[Path], as_json: bool, resume: Optional[str] = None,
                   wait: bool = True, executor: str = "local", ray_address: Optional[str] = None,
                   workers: Optional[int] = None, caps: Caps | None = None) -> str:
    """Run `config` into the database at `db` and print (or, with `as_json`, dump) its curves and books.

    `caps` bound the whole sweep's books: it stops drawing when one is reached, and says which."""
    store = open_store(db, create=True)
    if resume is not None:
        resume = store.resolve_run(resume)
        if store.run(resume).finished:  # said before the model loads
            raise ConfigError(f"run {resume} is finished; nothing to resume (`oomlab show {resume}` shows it)")
    from oomlab.analysis.curves import run_curves
    from oomlab.report.plot import plot_curves
    from oomlab.report.tables import curve_table

    with console.status(f"loading backend [bold]{config.backend}[/bold] ..."):
        backend = None
        if executor != "local" or ray_address is not None or workers is not None:
            from oomlab.executors import executor_backend

            # the run keeps the inner backend's name and model id: it resumes with or without Ray
            backend = executor_backend(executor, config.backend, config.backend_options, address=ray_address,
                                       workers=workers)
        sweep = Sweep(config, store, backend=backend, caps=caps or None)
    if not as_json:
        console.print(f"model [bold]{sweep.backend.model_id}[/bold] · task [bold]{config.task}[/bold] · "
                      f"N={config.n} · {config.problems} problems · energy {sweep.meter.method}")
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=as_json) as bar:
        job = bar.add_task("sweeping", total=config.problems * len(config.strategies))

        started = time.perf_counter()

        def progress(done: int, total: int, key: str) -> None:
            live = sweep.metered
            rate = (live.drawn / max(time.perf_counter() - started, 1e-9)) if live is not None else 0.0
            flight = getattr(sweep.backend, "in_flight", None)
            extra = f" · {rate:,.1f} samples/s" + (f" · {flight} in flight" if flight is not None else "")
            bar.update(job, completed=done, total=total, description=f"sweeping · {key}{extra}")

        if hasattr(sweep.backend, "on_status"):  # a silent server's countdown, shown where the user looks
            sweep.backend.on_status = lambda line: bar.update(job, description=line)

        def waiting(busy: RunBusy) -> None:
            err_console.print(f"[yellow]{busy.describe()}; waiting for it (Ctrl-C to stop)[/yellow]")

        try:
            result = sweep.run(resume=resume, progress=progress, wait=wait, on_wait=waiting)
            lost = [f"endpoint {url} ({error})" for url, error in getattr(sweep.backend, "dead_endpoints", [])]
            for line in lost + [str(w) for w in getattr(sweep.backend, "dead_workers", [])]:
                err_console.print(f"[yellow]died mid-sweep, its requests went to the others (abandoned tries are on "
                                  f"the waste line): {line}[/yellow]")
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
        print_json({"run_id": result.run_id, "resumed": result.resumed, "samples_drawn": result.drawn,
                    "samples_reused": result.reused, "run_samples_drawn": info.samples_drawn,
                    "run_samples_reused": info.samples_reused, "waste": store.waste(result.run_id).__dict__,
                    "dead_endpoints": [{"url": u, "error": e} for u, e in getattr(sweep.backend, "dead_endpoints", [])],
                    "plot": str(plot_path) if plot_path else None, "stopped_by": result.stopped_by,
                    "totals": totals.__dict__ | {"energy_method": info.energy_method},
                    "curves": [c.to_dict() for c in curves]})
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
    if result.stopped_by:
        console.print(f"[yellow]{escape(result.stopped_by)}[/yellow]", highlight=False, soft_wrap=True)
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
    base_url: Optional[list[str]] = typer.Option(
        None, "--base-url",
        help="openai backend: e.g. http://127.0.0.1:8000/v1 (vLLM, SGLang, llama.cpp server); repeat it to spread requests "
             "over several endpoints, or give @FILE, a file of URLs one per line.",
    ),
    executor: str = typer.Option("local", "--executor", help="local (default), or ray: backends on Ray workers, one per node or GPU."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="--executor ray: an existing cluster (e.g. 10.0.0.1:6379); default: start a local one."),
    workers: Optional[int] = typer.Option(None, "--workers", help="--executor ray: how many workers (default: one per GPU, else one per node)."),
    task_option: list[str] = typer.Option([], "--task-option", "-T", help="key=value passed to the task, e.g. -T path=data/gsm8k.jsonl."),
    backend_option: list[str] = typer.Option([], "--backend-option", "-B", help="key=value passed to the backend, e.g. -B n_params=7e9."),
    usd_per_hour: Optional[float] = typer.Option(None, help="Dollars per hour of device time (default 2.0, a user setting)."),
    usd_per_m_prompt: Optional[float] = typer.Option(None, help="Dollars per million prompt tokens (overrides --usd-per-hour)."),
    usd_per_m_completion: Optional[float] = typer.Option(None, help="Dollars per million completion tokens."),
    tdp_watts: Optional[float] = typer.Option(None, help="Device TDP for the energy estimate when no counter is readable (50% of it is charged)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="A sweep as YAML or TOML; flags override it."),
    db: Path = db_option("SQLite database (created if missing)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write the accuracy-vs-FLOPs plot here."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue this run: its id, a unique prefix of one, or 'latest' (an unfinished identical sweep is resumed automatically)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="If another live process is writing this run: wait for it (default), or stop with one line."),
    max_tokens: Optional[float] = typer.Option(None, "--max-tokens", help="Cap on the sweep's tokens (prompt + completion). " + CAP_HELP),
    max_usd: Optional[float] = typer.Option(None, "--max-usd", help="Cap on the sweep's dollars at the configured price. " + CAP_HELP),
    max_flops: Optional[float] = typer.Option(None, "--max-flops", help="Cap on the sweep's FLOPs (needs model facts). " + CAP_HELP),
    max_joules: Optional[float] = typer.Option(None, "--max-joules", help="Cap on the sweep's energy, joules. " + CAP_HELP),
    as_json: bool = json_option("Print results as JSON."),
) -> None:
    """Run a sweep: strategies × budget ladder on a task; print a table per strategy and the run id.

    Samples are cached in the database by (model, prompt, sampling parameters, seed): re-running
    costs nothing, and a sweep killed mid-way resumes where it stopped.
    """
    data: dict[str, Any] = load_config_file(config) if config else {}
    flags = {
        "task": task, "n": n, "problems": problems, "seed": seed, "backend": backend,
        "strategies": list(strategy) if strategy else None,
        "ladder": parse_ladder(ladder) if ladder is not None else None,
        "budget_unit": budget_unit,
        "usd_per_hour": usd_per_hour, "usd_per_m_prompt": usd_per_m_prompt,
        "usd_per_m_completion": usd_per_m_completion, "tdp_watts": tdp_watts,
    }
    data.update({k: v for k, v in flags.items() if v is not None})
    data["task_options"] = _merge(data, "task_options", _options(task_option, "task"))
    bopts = data["backend_options"] = _merge(data, "backend_options", _options(backend_option, "backend"))
    if model:
        bopts["model"] = model
    if base_url:
        bopts["base_url"] = base_url[0] if len(base_url) == 1 else list(base_url)
    cfg = SweepConfig(**data)
    cfg.validate()  # every setting and option, before the dataset is read or the model loads
    caps = Caps(tokens=max_tokens, usd=max_usd, flops=max_flops, joules=max_joules)
    fit_problems(cfg)
    if plot is None and not as_json:
        plot = Path(f"oomlab-{cfg.task}.png")
    run_and_report(cfg, db, plot, as_json, resume, wait, executor, ray_address, workers, caps=caps)


@app.command()
def demo(
    db: Path = db_option("SQLite database (created if missing)."),
    plot: Path = typer.Option(Path("oomlab-demo.png"), "--plot", help="Where to write the plot."),
    problems: int = typer.Option(100, "--problems", "-p", help="Number of arithmetic problems."),
    n: int = typer.Option(16, "--n", "-n", help="Samples per problem."),
) -> None:
    """The main job: greedy, majority voting and best-of-n (oracle) on arithmetic with the embedded model."""
    cfg = SweepConfig(problems=problems, n=n, strategies=["greedy", "majority", "best-of-n", "best-of-n:scorer=logprob"])
    cfg.validate()
    run_and_report(cfg, db, plot, as_json=False)

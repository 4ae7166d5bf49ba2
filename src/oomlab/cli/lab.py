"""`oomlab lab`: train a ladder of small transformers and measure what training and test-time compute buy.

`oomlab lab run` trains the preset's ladder (resuming any model a kill interrupted), sweeps every
model through the ordinary Sweep and Store with the `torch` backend, and ends with a table, the
two-panel figure and an HTML report. torch is imported only when a command needs it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from oomlab.cli.app import app
from oomlab.cli.common import console, db_option
from oomlab.errors import ConfigError
from oomlab.lab.summary import budget_text

lab_app = typer.Typer(name="lab", no_args_is_help=True, help=(
    "The lab: train small transformers at training budgets spanning OOMs on a generated task (direct and "
    "chain-of-thought formats), sweep each one's test-time scaling, and measure the exchange rate between "
    "the two kinds of compute.\n\n"
    "oomlab lab run: the CPU ladder (minutes). oomlab lab run --device cuda: the larger GPU ladder. "
    "oomlab lab plan: the ladder's models, steps and FLOPs without training."))
app.add_typer(lab_app, name="lab")

DB = db_option("SQLite database; checkpoints and the report go beside it (<db stem>_lab/).")
PRESET = typer.Option(None, "--preset", help="Ladder preset: cpu (default on CPU: lab-countdown, a verifier "
                                             "that reads only the problem), cpu-sum (addition), cpu-chain (modular "
                                             "chains), gpu (default with --device cuda), tiny and tiny-countdown "
                                             "(seconds; the tests').")
DEVICE = typer.Option(None, "--device", help="cpu or cuda (default: the preset's; cpu for cpu and tiny, cuda for gpu).")


def _ladder(preset: str | None, device: str | None, budgets: str | None, seeds: str | None, problems: int | None,
            n: int | None):
    from oomlab.lab.presets import PRESETS

    name = preset or ("gpu" if (device or "").startswith("cuda") else "cpu")
    if name not in PRESETS:
        raise ConfigError(f"unknown lab preset '{name}'; valid presets: {', '.join(PRESETS)}")
    if device is not None and not device.startswith(("cpu", "cuda")):
        raise ConfigError(f"--device must be cpu or cuda (or cuda:N), got '{device}'")
    ladder = PRESETS[name].with_options(problems=problems, n=n, device=device)
    if budgets:
        try:
            ladder = ladder.with_options(budgets=tuple(float(b) for b in budgets.split(",")))
        except ValueError:
            raise ConfigError(f"--budgets must be comma-separated FLOPs, e.g. 1e11,1e12, got '{budgets}'") from None
    if seeds:
        ladder = ladder.with_options(seeds=tuple(int(s) for s in seeds.split(",")))
    ladder.validate()
    return ladder


@lab_app.command()
def plan(preset: str | None = PRESET, device: str | None = DEVICE,
         budgets: str | None = typer.Option(None, "--budgets", help="Training budgets in FLOPs, comma-separated."),
         seeds: str | None = typer.Option(None, "--seeds", help="Training seeds, comma-separated (default 0).")) -> None:
    """Print the ladder: every model's shape, N, steps, tokens and training FLOPs, without training."""
    ladder = _ladder(preset, device, budgets, seeds, None, None)
    t = Table(title=f"lab ladder '{ladder.name}': {ladder.task} {ladder.task_options or ''} · "
                    f"{len(ladder.budgets)} budgets over {ladder.span_ooms:.1f} OOMs · tokens ≈ "
                    f"{ladder.tokens_per_param:g} × N")
    for col in ("budget", "format", "seed", "d×L", "N (non-emb.)", "steps", "tokens", "tokens/N", "train FLOPs"):
        t.add_column(col, justify="right")
    for budget, fmt, seed, spec in ladder.specs():
        c = spec.config
        t.add_row(budget_text(budget), fmt, str(seed), f"{c.d_model}×{c.n_layer}", f"{c.n_params_non_embedding:,}",
                  f"{spec.steps:,}", f"{spec.tokens:,}", f"{spec.tokens / c.n_params_non_embedding:.1f}",
                  f"{spec.flops:.3e}")
    console.print(t)
    if ladder.note:
        console.print(f"[dim]{ladder.note}[/]")


class _Bars:
    """LabProgress drawn as Rich progress bars: one per model for training, one for its sweep."""

    def __init__(self, progress: Progress, total: int):
        self.p = progress
        self.overall = progress.add_task("lab", total=2 * total, info="")

    def training(self, index, total, name, spec):
        task = self.p.add_task(f"train {name}", total=spec.steps, info="")

        def update(tp):
            if tp.step % 5 == 0 or tp.step == tp.steps:
                self.p.update(task, completed=tp.step, info=f"{tp.tokens_per_second:,.0f} tok/s · loss {tp.loss:.3f} "
                                                             f"· {tp.flops:.2e} FLOPs")
        return update

    def trained(self, name, model):
        for t in self.p.tasks:
            if t.description == f"train {name}":
                self.p.update(t.id, completed=t.total, visible=False)
        self.p.advance(self.overall)

    def sweeping(self, index, total, name, units):
        task = self.p.add_task(f"sample {name}", total=units, info="")

        def update(done, total, key):
            self.p.update(task, completed=done, info=key)
            if done == total:
                self.p.update(task, visible=False)
                self.p.advance(self.overall)
        return update

    def note(self, text):
        self.p.console.print(text)


@lab_app.command()
def run(
    preset: str | None = PRESET,
    device: str | None = DEVICE,
    db: Path = DB,
    jobs: int | None = typer.Option(None, "--jobs", min=1, help="Models trained and swept at once, a process each "
                                                                "(default: one per CPU core on cpu, 1 on cuda)."),
    threads: int | None = typer.Option(None, "--threads", min=1,
                                       help="torch threads per model (default: the cores over --jobs)."),
    budgets: str | None = typer.Option(None, "--budgets", help="Training budgets in FLOPs, comma-separated."),
    seeds: str | None = typer.Option(None, "--seeds", help="Training seeds, comma-separated (default 0)."),
    problems: int | None = typer.Option(None, "--problems", help="Held-out problems each model is swept on."),
    n: int | None = typer.Option(None, "--n", help="Samples per problem for the sampled strategies."),
    n_boot: int = typer.Option(1000, "--n-boot", min=10, help="Bootstrap replicates for every interval."),
    out: Path | None = typer.Option(None, "--out", help="Where the figure and report go (default: the lab dir)."),
) -> None:
    """Train the ladder, sweep every model, and report the exchange rate and compute-equivalent gains.

    Resumable: run it again after a kill and each model continues from its last checkpoint; finished
    models and sweeps are reused, so a finished lab re-renders its report in seconds.
    """
    # Before torch loads OpenMP: threads that sleep when idle instead of spinning. On the shared 2-core
    # machine a 2048×64×192 matmul on 2 threads ran at 1.2 GFLOP/s spinning and 23 GFLOP/s passive.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from oomlab.lab.report import write_report
    from oomlab.lab.run import run_lab
    from oomlab.lab.summary import lab_dir_for

    ladder = _ladder(preset, device, budgets, seeds, problems, n)
    cores = os.cpu_count() or 1
    jobs = jobs or (1 if ladder.device.startswith("cuda") else cores)
    threads = threads or max(1, cores // jobs)
    t0 = time.perf_counter()
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=console, transient=True) as progress:
        result = run_lab(ladder, db, device=ladder.device, threads=threads, progress=_Bars(progress, len(ladder.specs())),
                         n_boot=n_boot, jobs=jobs)
    paths = write_report(result, out or lab_dir_for(db))
    _print_result(result)
    console.print(f"lab '{ladder.name}' · {len(result.points)} models · {time.perf_counter() - t0:.0f} s · "
                  f"db {db} · checkpoints {lab_dir_for(db) / 'checkpoints'}")
    console.print(f"figure: {paths['figure']}\nreport: {paths['report']}")


def _print_result(result) -> None:
    from oomlab.lab.exchange import BASELINE
    from oomlab.lab.report import figure_strategies

    ladder = result.ladder
    strategies = figure_strategies(result)
    t = Table(title=f"held-out accuracy ({ladder.problems} problems, 95% intervals)")
    for col in ("model", "train FLOPs", "N", "loss", "greedy") + tuple(f"{label}@{ladder.n}" for _, label in strategies):
        t.add_column(escape(col), justify="right")
    for e, p in zip(result.entries, result.points):
        g = p.curve(BASELINE)
        cells = [p.name, f"{p.train_flops:.2e}", f"{p.n_params:,}", f"{e['final_loss']:.3f}",
                 f"{100 * g.accuracy[0]:.1f}% [{100 * g.lo[0]:.0f}, {100 * g.hi[0]:.0f}]"]
        for key, label in strategies:
            c = p.curve(key)
            cells.append(f"{100 * c.accuracy[-1]:.1f}% [{100 * c.lo[-1]:.0f}, {100 * c.hi[-1]:.0f}]"
                         + (" (oracle)" if c.oracle else ""))
        t.add_row(*cells)
    console.print(t)
    for fmt, er in result.exchange.items():
        if isinstance(er, str):
            console.print(f"exchange rate ({fmt}): [yellow]{escape(er)}[/]")
            bounds = result.bounds.get(fmt) or []
            for b in bounds:
                console.print(f"  {b.smaller} never reaches {b.larger} within its test budget: more than "
                              f"{b.bound:.2f} test-time OOMs per training OOM ({b.test_ooms:.2f} test OOMs given, "
                              f"{b.train_ooms:.2f} training OOMs apart)")
            if bounds:
                top = max(bounds, key=lambda b: b.bound)
                console.print(f"  exchange rate ({fmt}) > {top.bound:.2f} test-time OOMs per training OOM (the "
                              "tightest pair; parallel iso-accuracy lines assumed)")
        else:
            lo, hi = er.slope_interval
            console.print(f"exchange rate ({fmt}, along {escape(result.exchange_label)}'s iso-accuracy lines): "
                          f"{er.test_ooms_per_train_oom:.2f} test-time OOMs per training OOM "
                          f"[{-hi:.2f}, {-lo:.2f}] ({er.interval_method}): {er.rate_text}", highlight=False)
    primary = result.primary
    columns = [w for w in result.gains if w.startswith(f"{primary}:") and w.endswith(f"@{ladder.n}")]
    columns += [w for w in result.gains if not w.startswith(("cot:", "direct:"))]
    g = Table(title=f"compute-equivalent gains on the {primary} models: × training compute the greedy baseline needs "
                    "to match (95% interval; past the ladder = a bound, never extrapolated)")
    g.add_column("model", justify="right")
    for w in columns:
        g.add_column(escape(w.split(": ", 1)[-1]), justify="right", overflow="fold")
    budgets = sorted({p.budget for p in result.points})
    for i, b in enumerate(budgets):
        cells = [f"{primary} {budget_text(b)}"]
        for w in columns:
            x = result.gains[w][i] if i < len(result.gains[w]) else None
            cells.append("" if x is None else x.text.replace(" (past the ladder's largest budget)", " (past ladder)")
                         .replace(" (at or below the ladder's smallest budget)", " (below ladder)")
                         .replace(" points of chance: nothing to price)", " points of chance)"))
        g.add_row(*cells)
    console.print(g)
    lifts = Table(title=f"lift over greedy on the same model and problems ({primary}; points, paired bootstrap 95%)")
    lifts.add_column("model", justify="right")
    names = list(dict.fromkeys(f"{lf.strategy}@{lf.k}" for lf in result.lifts))
    for name in names:
        lifts.add_column(escape(name), justify="right")
    for p in (p for p in result.points if p.format == primary and p.seed == min(ladder.seeds)):
        cells = {f"{lf.strategy}@{lf.k}": lf for lf in result.lifts if lf.model == p.name}
        lifts.add_row(p.name, *(f"{100 * c.difference:+.1f} [{100 * c.lo:+.1f}, {100 * c.hi:+.1f}]"
                                + (" *" if c.excludes_zero else "") for c in (cells[n] for n in names)))
    console.print(lifts)
    console.print("[dim]* the interval excludes zero[/]")
    chance = getattr(result, "chance", 0.0)
    if chance:
        console.print(f"[dim]pass@k is coverage, and with {1 / chance:.0f} possible answers a pure guesser has "
                      f"pass@{ladder.n} = {100 * (1 - (1 - chance) ** ladder.n):.1f}%.[/]")
    best = [lf for lf in result.lifts if not lf.oracle and lf.excludes_zero and lf.difference > 0]
    if best:
        top = max(best, key=lambda lf: lf.lo)
        console.print(f"largest deployable lift: {escape(top.strategy)}@{top.k} on {top.model}: "
                      f"{100 * top.difference:+.1f} points [{100 * top.lo:+.1f}, {100 * top.hi:+.1f}]")
    else:
        console.print("no deployable strategy lifts any model by a margin whose interval excludes zero")

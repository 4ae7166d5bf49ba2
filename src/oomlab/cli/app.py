"""The root Typer app; command groups register themselves on it."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="oomlab",
    help=(
        "Measure what compute buys an AI system, in orders of magnitude.\n\n"
        "Give a model 1x ... 1000x the inference compute (voting, best-of-n, search, ...) and see the "
        "scaling curve, with every sample's tokens, FLOPs, seconds, joules, dollars and human-time "
        "equivalent on the books.\n\n"
        "Start with:  oomlab demo   (a sweep on the embedded model, a table and a plot, minutes on a laptop)"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
state = {"debug": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors.")) -> None:
    state["debug"] = debug

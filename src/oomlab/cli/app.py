"""The root Typer app; command groups register themselves on it.

Two things are done here once for every command: an OomlabError (or a database SQLite cannot read)
becomes one red line on stderr and exit code 1, and `--help` has the usual look of a command line
(`-n, --n INTEGER`, bare flags, one column of options that fits 80 columns) instead of Python type
names (`<int>`, `<bool>`, `<list[str]>`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

from oomlab.cli.common import console, err_console, fail, state
from oomlab.errors import OomlabError

__all__ = ["OomlabGroup", "app", "console", "err_console", "fail", "state", "tidy_help"]


class OomlabGroup(TyperGroup):
    """The root group: errors meant for a person as one line, and help without type noise."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy_help(self)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except OomlabError as e:
            if state["debug"]:
                raise
            fail(str(e))
        except sqlite3.DatabaseError as e:  # a file that opened but breaks on reading: damaged, or another schema
            if state["debug"]:
                raise
            db = state.get("db")
            fail(f"--db {db}: cannot read the database ({e}); is it damaged, or not an oomlab database?"
                 if db else f"database error: {e}")
        ctx.exit(1)


# -- --help: the usual look (`--task TEXT`, bare flags), not `<str>` / `<bool>` / `<list[str]>` ----------

_TYPE_WORDS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "bool": "BOOLEAN"}


def _metavar(param: TyperOption | TyperArgument) -> str | None:
    desc = param.type_descriptor
    if desc.is_choice:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in desc.choices or ()) + "]"
    if desc.is_path:
        return "PATH"
    annotation = desc.annotation
    args = getattr(annotation, "__args__", None)
    if desc.is_list and args:
        annotation = args[0]
    name = getattr(annotation, "__name__", None)
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "PATH"
    return _TYPE_WORDS.get(name or "", (name or "VALUE").upper())


def _reflow(text: str | None) -> str | None:
    """Paragraphs as paragraphs: the single line breaks of a docstring joined."""
    if not text:
        return text
    paragraphs = text.split("\n\n")
    out = []
    for p in paragraphs:
        lines = p.split("\n")
        if p.startswith("\b") or any(line.startswith((" ", "\t")) for line in lines[1:]):
            out.append(p)  # verbatim (an example, a table)
        else:
            out.append(" ".join(line.strip() for line in lines if line.strip()))
    return "\n\n".join(out)


def _plain(text: str | None) -> str | None:
    """Help written with rich markup ([bold]...[/bold]) as plain text: --help is printed plainly."""
    if not text or "[/" not in text:
        return text
    from rich.text import Text

    return Text.from_markup(text).plain


def _tidy_params(command: Any) -> None:
    for param in command.params:
        if getattr(param, "help", None):
            param.help = _plain(param.help)
        if isinstance(param, TyperOption):
            if param.metavar is None:
                param.metavar = "" if (param.is_flag or param.count) else _metavar(param)
        elif isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = (param.name or "ARG").upper()
            param.display_type_rich = lambda ctx: None  # the name says what it is: RUN_ID, not RUN_ID <str>
    try:  # the --help option is made on demand; make it now so that it is a bare flag too
        from typer._click import Context

        help_option = command.get_help_option(Context(command, info_name=command.name))
        if help_option is not None and help_option.metavar is None:
            help_option.metavar = ""
    except Exception:  # a Typer without the help-option cache: its --help keeps the default look
        pass


def tidy_help(command: Any) -> None:
    """Every command below `command`: value options show an upper-case metavar, flags none, rich
    markup is read as plain text, and a group lists each command with its whole first paragraph
    (not cut at its first full stop)."""
    _tidy_params(command)
    command.help = _plain(command.help)
    command.epilog = _plain(getattr(command, "epilog", None))
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)
        if not sub.short_help and sub.help:
            sub.short_help = (_reflow(sub.help) or "").split("\n\n", 1)[0].strip()


app = typer.Typer(
    name="oomlab",
    cls=OomlabGroup,
    help=(
        "Measure what compute buys an AI system, in orders of magnitude.\n\n"
        "Give a model 1x ... 1000x the inference compute (voting, best-of-n, search, ...) and see the "
        "scaling curve, with every sample's tokens, FLOPs, seconds, joules, dollars and human-time "
        "equivalent on the books.\n\n"
        "Start with:  oomlab demo   (a sweep on the embedded model, a table and a plot, minutes on a laptop)"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors.")) -> None:
    state["debug"] = debug

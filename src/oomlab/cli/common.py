"""What every command shares: the `--db` option, opening the database, the RUN argument, JSON output, the consoles.

A command module parses its options, calls the Python API and prints; everything it would otherwise
write again (the database option, how a missing or foreign database is refused, how JSON is printed)
lives here once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from oomlab.errors import OomlabError
from oomlab.numbers import json_safe

if TYPE_CHECKING:
    from oomlab.ledger import LedgerTotals
    from oomlab.store import Store

__all__ = ["DB_HELP", "DEFAULT_DB", "RUN_HELP", "console", "db_option", "err_console", "fail", "json_option",
           "open_store", "print_json", "run_argument", "run_totals", "state"]

DEFAULT_DB = "oomlab.db"  # the same default as oomlab.store.DEFAULT_DB, without importing the store to say so
DB_HELP = "SQLite database."
RUN_HELP = "Run id, a unique prefix of one, or 'latest' (the default)."

console = Console()
err_console = Console(stderr=True)
# the root callback's --debug, and the database a command opened (named by the one-line error of a
# database that breaks on reading)
state: dict[str, Any] = {"debug": False, "db": None}


def fail(message: str) -> None:
    """One red line on stderr (never wrapped, never read as markup)."""
    err_console.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)


def db_option(help: str = DB_HELP, default: Path | None = Path(DEFAULT_DB)) -> Any:
    """The `--db PATH` option of every command that reads or writes the database."""
    return typer.Option(default, "--db", help=help)


def json_option(help: str = "Print as JSON.") -> Any:
    """The `--json` flag: the command's result as JSON on stdout (see `print_json`), nothing else there."""
    return typer.Option(False, "--json", help=help)


def run_argument(help: str = RUN_HELP) -> Any:
    """The optional RUN argument of every command that reads one run: id, prefix or 'latest'."""
    return typer.Argument(None, metavar="RUN", help=help, show_default=False)


def open_store(db: Path | str, *, create: bool = False) -> Store:
    """The Store at --db, for a command: a missing file is refused unless the command `create`s one;
    a damaged or foreign file is one clear line (here, or when it first breaks on reading)."""
    from oomlab.store import Store  # at call time: commands that never open a database do not load it

    db = Path(db)
    if not create and not db.exists():
        raise OomlabError(f"no database at {db} (run a sweep first, or pass --db)")
    state["db"] = db
    store = Store(db)
    connection = getattr(store, "db", None)  # None: a stand-in Store without a connection (a test's)
    if connection is not None:  # another schema fails here, not half-way through a command
        connection.execute("SELECT id, config_json, status FROM runs LIMIT 1").fetchall()
    return store


def run_totals(db: Path | str, run_id: str | None) -> tuple[str, LedgerTotals]:
    """(the run's id, its books): `run_id` may be an id, a unique prefix of one, or 'latest'."""
    store = open_store(db)
    try:
        resolve = getattr(store, "resolve_run", None)
        run_id = resolve(run_id) if resolve is not None else run_id
        return run_id, store.run_totals(run_id)
    finally:
        store.close()


def print_json(payload: Any) -> None:
    """`--json` output: indented, UTF-8, NaN and ±inf as null (plain JSON any parser reads)."""
    typer.echo(json.dumps(json_safe(payload), indent=2, ensure_ascii=False))

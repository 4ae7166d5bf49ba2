"""The `oomlab` command line: `main()` turns OomlabErrors into one red line and exit code 1."""

from __future__ import annotations

import sys

from oomlab.cli.app import app, err_console, state
from oomlab.errors import OomlabError


def _mount() -> None:
    from oomlab.cli import runs, sweep  # noqa: F401  (commands register on import)

    try:
        from oomlab.cli import ooms

        app.add_typer(ooms.app, name="ooms")
    except ImportError:  # pragma: no cover
        pass
    for optional in ("strategies", "report", "trace"):
        try:
            __import__(f"oomlab.cli.{optional}")
        except ImportError:
            pass


_mount()


def main() -> None:
    try:
        app()
    except OomlabError as e:
        if state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/bold red] {e}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]: every sample drawn so far is saved; run the same command to resume")
        sys.exit(130)


__all__ = ["app", "main"]

"""The `oomlab` command line: `main()` turns OomlabErrors into one red line and exit code 1."""

from __future__ import annotations

import sys

from oomlab.cli.app import app, err_console, fail, state
from oomlab.errors import OomlabError


def _mount() -> None:
    # commands register on import, in --help's order; a broken module fails loudly, not silently
    from oomlab.cli import sweep  # noqa: F401, I001
    from oomlab.cli import runs  # noqa: F401
    from oomlab.cli import report, trace, strategies, ooms  # noqa: F401
    from oomlab.cli import lab  # noqa: F401  (mounts `oomlab lab`)
    from oomlab.cli import serve  # noqa: F401  (mounts `oomlab serve`)

    app.add_typer(ooms.app, name="ooms")


_mount()


def main() -> None:
    try:
        app()
    except OomlabError as e:
        if state["debug"]:
            raise
        fail(str(e))
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]: every sample drawn so far is saved; run the same command to resume")
        sys.exit(130)


__all__ = ["app", "main"]

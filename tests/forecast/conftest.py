"""Run `oomlab` the way a user does: the real `main()`, which turns an OomlabError into one red line and exit 1."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)

    def assert_one_clear_line(self, *fragments: str) -> None:
        """Bad input: a non-zero exit, one 'error:' line on stderr, nothing on stdout, no traceback."""
        assert self.code != 0
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert len(lines) == 1, self.err
        assert lines[0].startswith("error: "), lines[0]
        assert "Traceback" not in self.err + self.out
        assert self.out == ""
        for fragment in fragments:
            assert fragment in lines[0], lines[0]


@pytest.fixture
def oomlab(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Outcome]:
    """`oomlab(*args)` runs `oomlab ARGS...` in-process, through the console script's entry point."""
    from oomlab.cli import main

    def run(*args: str) -> Outcome:
        monkeypatch.setattr(sys, "argv", ["oomlab", *args])
        capsys.readouterr()
        code: int | str | None = 0
        try:
            main()
        except SystemExit as e:
            code = e.code
        captured = capsys.readouterr()
        return Outcome(0 if code is None else int(code), captured.out, captured.err)

    return run

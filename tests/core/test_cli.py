"""Bad input through the real `oomlab` command: one red line, non-zero exit, no traceback."""

from __future__ import annotations

import subprocess

import pytest

import shutil
import sys


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    exe = shutil.which("oomlab")
    cmd = [exe] if exe else [sys.executable, "-c", "from oomlab.cli import main; main()"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sweep", "--task", "nope"], "unknown task 'nope'; valid tasks: "),
        (["sweep", "--strategy", "nope"], "unknown strategy 'nope'; valid strategies: "),
        (["sweep", "--strategy", "best-of-n:scorer=nope"], "unknown scorer 'nope'; valid scorers: "),
        (["sweep", "--backend", "nope"], "unknown backend 'nope'; valid backends: "),
        (["sweep", "--n", "0"], "--n must be at least 1"),
        (["sweep", "--model", "/no/such/model.gguf"], "model file not found: /no/such/model.gguf"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, message) -> None:
    out = run(*args, "--db", str(tmp_path / "x.db"), cwd=tmp_path)
    assert out.returncode == 1
    assert message in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_unknown_names_list_the_valid_ones(tmp_path) -> None:
    out = run("sweep", "--task", "nope", "--db", str(tmp_path / "x.db"))
    for name in ("arithmetic", "gsm8k", "jsonl"):
        assert name in out.stderr


def test_unknown_run_id(tmp_path) -> None:
    from oomlab.store import Store

    Store(tmp_path / "x.db").close()
    out = run("plot", "nope", "--db", str(tmp_path / "x.db"))
    assert out.returncode == 1 and "no run 'nope'" in out.stderr and "Traceback" not in out.stderr


def test_unreachable_server_names_the_url(tmp_path) -> None:
    out = run("sweep", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
              "-B", "max_retries=1", "-B", "backoff=0.05", "--problems", "1", "--n", "1", "-s", "greedy",
              "--db", str(tmp_path / "x.db"))
    assert out.returncode == 1 and "http://127.0.0.1:9/v1" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sweep", "-s", "best-of-n:scorr=logprob"], "unknown option 'scorr' (did you mean 'scorer'?)"),
        (["sweep", "-T", "difficuly=3"], "unknown option 'difficuly' (did you mean 'difficulty'?)"),
        (["sweep", "--ladder", "nan"], "a budget must be a finite number, got nan"),
        (["sweep", "--tdp-watts", "-5"], "--tdp-watts must be a positive power in watts"),
        (["show", "latest"], "no runs in"),
    ],
)
def test_refusals_are_one_line_through_the_entry_point(tmp_path, args, message) -> None:
    """The installed `oomlab` (main(), not Typer's runner): exactly one line on stderr, nothing else."""
    from oomlab.store import Store

    Store(tmp_path / "x.db").close()
    out = run(*args, "--db", str(tmp_path / "x.db"), cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr + out.stdout
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ") and message in out.stderr, out.stderr

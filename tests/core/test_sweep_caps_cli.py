"""`oomlab sweep --max-tokens/--max-usd/--max-flops/--max-joules`: a sweep stops at its cap, says so, and resumes."""

from __future__ import annotations

import json
import subprocess

import pytest


@pytest.fixture
def run(oomlab_cmd):
    def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
        return subprocess.run(oomlab_cmd + list(args), capture_output=True, text=True, timeout=300, cwd=cwd)

    return run


def tokens(out: dict) -> float:
    return out["totals"]["prompt_tokens"] + out["totals"]["completion_tokens"]


SWEEP = ("sweep", "-s", "majority", "-n", "4", "-p", "5", "--seed", "0")


def test_a_cap_stops_the_sweep_and_a_higher_one_resumes_it(run, tmp_path) -> None:
    db = str(tmp_path / "caps.db")
    capped = run(*SWEEP, "--max-tokens", "300", "--db", db, "--json", cwd=tmp_path)
    assert capped.returncode == 0, capped.stderr
    first = json.loads(capped.stdout)
    assert first["stopped_by"] and "tokens cap" in first["stopped_by"]
    assert tokens(first) <= 300

    shown = run(*SWEEP, "--max-tokens", "300", "--resume", first["run_id"], "--db", db, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "tokens cap" in shown.stdout and "--resume" in shown.stdout  # the sentence, printed in the table output

    resumed = run(*SWEEP, "--max-tokens", "100000", "--resume", first["run_id"], "--db", db, "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    done = json.loads(resumed.stdout)
    assert done["run_id"] == first["run_id"] and done["stopped_by"] is None
    assert tokens(done) > tokens(first)


def test_a_bad_cap_is_one_clear_line(run, tmp_path) -> None:
    out = run(*SWEEP, "--max-usd", "0", "--db", str(tmp_path / "x.db"), cwd=tmp_path)
    assert out.returncode == 1
    assert "cap 'usd' must be a positive number" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout

"""Issue 10's statistics through the real `oomlab` command, on sweeps of scripted models (see conftest.py).

Units of the exchange rate (one line when runs mix FLOPs and tokens; `--unit tokens` counts all in
tokens), the unpaired compute-matched comparison, and the extrapolation check in `oomlab fit`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from oomlab.store import Store

TRAIN = ["--train-flops", "1e20", "--train-flops", "1e21"]


def oomlab(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("oomlab")
    cmd = [exe] if exe else [sys.executable, "-c", "from oomlab.cli import main; main()"]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=300, env=env)


def one_clear_line(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    return lines[0]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, scripted_run):
    """Run a: a model with facts (FLOPs). Run b: a model without (tokens). Same problems."""
    db = tmp_path_factory.mktemp("mixed") / "mixed.db"
    store = Store(db)
    try:
        a = scripted_run(store, "with-facts", 0.35, problems=40, n=16)
        b = scripted_run(store, "no-facts", 0.5, problems=40, n=16, facts=False)
    finally:
        store.close()
    return str(db), a, b


def test_exchange_refuses_mixed_units_in_one_line(mixed):
    db, a, b = mixed
    line = one_clear_line(oomlab("exchange", a, b, *TRAIN, "--db", db))
    assert "tokens" in line and "FLOPs" in line and "--unit tokens" in line and b in line
    line = one_clear_line(oomlab("exchange", a, b, *TRAIN, "--db", db, "--unit", "flops"))
    assert "no model facts" in line and b in line
    line = one_clear_line(oomlab("exchange", a, b, *TRAIN, "--db", db, "--unit", "joules"))
    assert "valid units: flops, tokens" in line


def test_exchange_in_tokens_says_so(mixed):
    db, a, b = mixed
    out = oomlab("exchange", a, b, *TRAIN, "--db", db, "--unit", "tokens", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["test_compute_unit"] == "tokens" and res["train_compute_unit"] == "FLOPs"
    text = " ".join(oomlab("exchange", a, b, *TRAIN, "--db", db, "--unit", "tokens").stdout.split())
    assert "test-time tokens" in text and "tokens per problem" in text


def test_exchange_without_any_facts_is_in_tokens(scripted_db):
    db, make = scripted_db
    a = make("plain-a", 0.35, problems=40, n=16, facts=False)
    b = make("plain-b", 0.5, problems=40, n=16, facts=False)
    out = oomlab("exchange", a, b, *TRAIN, "--db", str(db), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["test_compute_unit"] == "tokens"


def test_report_refuses_mixed_units_and_labels_tokens(mixed, tmp_path):
    db, a, b = mixed
    page = tmp_path / "r.html"
    out = oomlab("report", a, b, "-o", str(page), "--db", db, "--n-boot", "20", *TRAIN)
    assert out.returncode == 0, out.stderr
    html = page.read_text()
    assert "exchange rate refused" in html and "--unit tokens" in html and 'id="exchange-rate"' not in html
    out = oomlab("report", a, b, "-o", str(page), "--db", db, "--n-boot", "20", *TRAIN, "--unit", "tokens")
    assert out.returncode == 0, out.stderr
    html = page.read_text()
    assert "test-time tokens" in html and '"test_compute_unit": "tokens"' in html


def test_compare_on_different_problems_does_not_reverse_the_winner(scripted_db):
    """The audit's case: a small model near 9% against a large one near 90%, on different problems."""
    db, make = scripted_db
    small = make("small", 0.09, problems=60, n=8, n_params=100_000_000)
    large = make("large", 0.90, problems=60, n=8, n_params=1_000_000_000, seed=1)  # other problems
    out = oomlab("compare", small, large, "--db", str(db), "--train-tokens-a", "1e12", "--train-tokens-b", "1e12",
                 "--ratio", "1", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["paired"] is False
    for row in res["comparisons"]:
        assert row["winner"] != "small"
        lo, hi = row["difference_interval"]
        assert lo <= row["difference"] <= hi and hi < 0
        assert "unpaired" in row["interval_method"]
    greedy = next(r for r in res["comparisons"] if r["strategy"] == "greedy")
    assert greedy["winner"] == "large"
    assert greedy["difference_interval"][0] <= 0.09 - 0.90 <= greedy["difference_interval"][1]


def test_fit_marks_extrapolations_and_their_check(mixed):
    db, a, _ = mixed
    out = oomlab("fit", a, "--db", db, "--n-boot", "100", "--json")
    assert out.returncode == 0, out.stderr
    fits = json.loads(out.stdout)
    majority = next(s for s in fits["strategies"] if s["strategy"] == "majority")
    checked = 0
    for f in majority["fits"]:
        if f["fit"] is None:
            continue
        check = f["fit"]["holdout_check"]
        assert check["status"] in ("passed", "failed", "not possible")
        assert f["fit"]["extrapolation"] in ("checked", "unreliable", "unchecked")
        checked += 1
        for r in f["reach"]:
            if r["refused"] is None and r["extrapolated_ooms"] > 0:
                assert "assumes" in r["note"] and r["extrapolation"] == f["fit"]["extrapolation"]
                if check["status"] == "failed":
                    assert "UNRELIABLE" in r["note"]
    assert checked >= 1
    text = oomlab("fit", a, "--db", db, "--n-boot", "100").stdout
    assert "held-out check" in text and "held-out last rung" in text

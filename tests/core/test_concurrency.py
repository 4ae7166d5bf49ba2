"""Many real processes on one SQLite file, and README's everyday use in any order: nothing lost,
nothing dangling, every earlier run still renders. Sweeps run the embedded model through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oomlab.analysis.curves import run_curves
from oomlab.store import Store

pytestmark = pytest.mark.slow

SMALL = ["--problems", "4", "--n", "4", "-B", "n_threads=1"]


def oomlab(cmd: list[str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    # in the database's folder: a sweep writes its plot to the working directory
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, cwd=_folder(args))


def start(cmd: list[str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(cmd + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=_folder(args))


def _folder(args: tuple[str, ...]) -> str | None:
    return str(Path(args[args.index("--db") + 1]).parent) if "--db" in args else None


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def assert_clean(db: Path) -> list[str]:
    """No dangling reference; every run of the database renders its curves and books; returns the run ids."""
    store = Store(db)
    try:
        assert store.dangling() == 0
        ids = [r.id for r in store.runs()]
        for run_id in ids:
            assert run_curves(store, run_id, n_boot=50), f"run {run_id} renders no curve"
            assert store.run_totals(run_id).samples > 0
        return ids
    finally:
        store.close()


def assert_cli_renders(cmd: list[str], db: Path) -> None:
    """Every run through the real `oomlab show`, in one process per run."""
    for run_id in assert_clean(db):
        shown = oomlab(cmd, "show", run_id, "--db", str(db), "--json")
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["curves"], f"run {run_id} renders no curve"


def clean_errors(err: str) -> None:
    for bad in ("Traceback", "database is locked", "already exists", "KeyError"):
        assert bad not in err, err[-2000:]


def test_readme_everyday_use_in_any_order_keeps_every_run_readable(tmp_path, oomlab_cmd) -> None:
    db = str(tmp_path / "L.db")
    base = ["sweep", "--problems", "4", "--n", "8", "--seed", "3", "--db", db, "--json"]
    steps = [
        ["-s", "majority"],
        ["-s", "best-of-n:scorer=logprob"],  # the same samples, now with logprobs: the old rows must stay
        ["-s", "majority", "--n", "4"],  # a smaller N over the same seeds
        ["-s", "best-of-n:scorer=logprob", "-s", "best-of-n", "--n", "12"],  # a larger N: some cached, some new
    ]
    runs = []
    for extra in steps:
        out = oomlab(oomlab_cmd, *base, *extra)
        assert out.returncode == 0, out.stderr
        clean_errors(out.stderr)
        runs.append(json.loads(out.stdout)["run_id"])
        assert set(runs) <= set(assert_clean(Path(db)))
    assert_cli_renders(oomlab_cmd, Path(db))
    first = runs[0]
    for args in (["plot", first, "-o", str(tmp_path / "p.png")], ["fit", first, "--json"],
                 ["report", first, "-o", str(tmp_path / "r.html")], ["runs"]):
        out = oomlab(oomlab_cmd, *args, "--db", db)
        assert out.returncode == 0, (args, out.stderr)
        clean_errors(out.stderr)
    assert (tmp_path / "p.png").stat().st_size > 0 and (tmp_path / "r.html").stat().st_size > 0


def test_three_processes_create_one_new_database_at_once(tmp_path) -> None:
    code = "import sys; from oomlab.store import Store; s = Store(sys.argv[1]); print(len(s.runs()))"
    for i in range(4):
        db = str(tmp_path / f"new{i}.db")
        procs = [subprocess.Popen([sys.executable, "-c", code, db], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(3)]
        results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
        for out, err, rc in results:
            assert rc == 0 and out.strip() == "0", err
        names = [r[0] for r in Store(db).db.execute("SELECT name FROM _migrations")]
        assert names == sorted(set(names)) and len(names) >= 2


def test_concurrent_sweeps_and_readers_on_one_file(tmp_path, oomlab_cmd) -> None:
    db = str(tmp_path / "shared.db")
    same = ["sweep", "-s", "majority", "--seed", "5", *SMALL, "--db", db, "--json"]
    reader_code = (
        "import sys, time\nfrom oomlab.store import Store\ns = Store(sys.argv[1])\nt = time.time()\n"
        "while time.time() - t < float(sys.argv[2]):\n"
        "    for r in s.runs():\n        s.attempts(r.id); s.run_totals(r.id)\n    time.sleep(0.05)\n"
    )
    # two sweeps of one configuration started together, plus N=8 and N=4 of one seed at once, plus a reader
    procs = [start(oomlab_cmd, *same), start(oomlab_cmd, *same),
             start(oomlab_cmd, "sweep", "-s", "majority", "--seed", "6", "--problems", "4", "--n", "8",
                   "-B", "n_threads=1", "--db", db, "--json"),
             start(oomlab_cmd, "sweep", "-s", "majority", "--seed", "6", "--problems", "4", "--n", "4",
                   "-B", "n_threads=1", "--db", db, "--json")]
    time.sleep(2)
    reader = subprocess.Popen([sys.executable, "-c", reader_code, db, "20"], stderr=subprocess.PIPE, text=True)
    results = [finish(p) for p in procs]
    for rc, out, err in results:
        assert rc == 0, err[-2000:]
        clean_errors(err)
    _, rerr = reader.communicate(timeout=120)
    assert reader.returncode == 0, rerr[-2000:]
    first, second = (json.loads(out) for _, out, _ in results[:2])
    # one of the pair waited for the other and then paid for nothing
    assert sorted([first["samples_drawn"], second["samples_drawn"]])[0] == 0
    assert "is being written by pid" in results[0][2] + results[1][2]
    store = Store(db)
    keys = [r[0] for r in store.db.execute("SELECT cache_key FROM samples")]
    store.close()
    assert len(keys) == len(set(keys))
    assert_clean(Path(db))

    # six seconds apart: the second waits for (or resumes) the first, never corrupts it
    p1 = start(oomlab_cmd, "sweep", "-s", "majority", "-s", "best-of-n", "--seed", "7", *SMALL, "--db", db, "--json")
    time.sleep(6)
    p2 = start(oomlab_cmd, "sweep", "-s", "majority", "-s", "best-of-n", "--seed", "7", *SMALL, "--db", db, "--json")
    for rc, out, err in (finish(p1), finish(p2)):
        assert rc == 0, err[-2000:]
        clean_errors(err)
    assert_cli_renders(oomlab_cmd, Path(db))
    statuses = {r.status for r in Store(db).runs()}
    assert statuses == {"done"}

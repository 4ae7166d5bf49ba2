"""Bad input through the real `oomlab` command (Typer's runner on the app itself, or a subprocess):
one line on stderr, a non-zero exit, no traceback, and nothing accepted silently.

No test here loads a model: a bad setting is refused before the model loads, and sweeps that must
run use oomlab.testing's scripted backend in place of the one named.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

import oomlab.cli  # noqa: F401  (registers the commands)
from oomlab.cli.app import app

runner = CliRunner()


def oomlab(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def one_line_error(result, *needles: str) -> str:
    """The command failed with exactly one line on stderr, holding every needle; that line."""
    text = result.stderr
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output, result.output
    lines = text.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# -- item 11: config files --------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "text", "needles"), [
    ("a.yaml", "n: abc\n", ["n takes a whole number", "'abc'"]),
    ("b.yaml", "ladder: [1, a]\n", ["ladder takes numbers", "'a'"]),
    ("c.yaml", "task_options: 5\n", ["task_options takes a mapping", "5"]),
    ("d.yaml", "n: true\n", ["n takes a whole number", "true"]),
    ("e.yaml", "n: [\n", ["not valid YAML", "line 2"]),
    ("f.yaml", "- 1\n- 2\n", ["expected keys and values", "a list"]),
    ("g.yaml", "nn: 3\n", ["unknown key 'nn'", "did you mean 'n'?"]),
    ("h.yaml", "ladder: [1, true]\n", ["ladder takes numbers", "true"]),
    ("i.toml", "n = \n", ["not valid TOML", "line 1"]),
    ("j.toml", 'n = "abc"\n', ["n takes a whole number"]),
    ("k.toml", "problems = 2.5\n", ["problems takes a whole number", "2.5"]),
], ids=lambda v: v if isinstance(v, str) and "." in v and "\n" not in v else "")
def test_a_bad_config_file_is_one_line_naming_it(tmp_path, name, text, needles) -> None:
    path = tmp_path / name
    path.write_text(text)
    line = one_line_error(oomlab("sweep", "--config", path, "--db", tmp_path / "x.db"), *needles)
    assert str(path) in line
    assert not (tmp_path / "x.db").exists(), "refused before the database is touched"


def test_a_config_file_that_is_not_utf8(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"n: \xff\xfe\n")
    one_line_error(oomlab("sweep", "-c", path, "--db", tmp_path / "x.db"), str(path), "not UTF-8")


def test_a_good_config_is_read_with_its_types(tmp_path) -> None:
    from oomlab.cli.sweep import load_config_file

    path = tmp_path / "ok.yaml"
    path.write_text('strategies: majority\nn: "4"\nladder: "1,2"\ntask_options: {difficulty: 2}\n')
    assert load_config_file(path) == {"strategies": ["majority"], "n": 4, "ladder": [1, 2],
                                      "task_options": {"difficulty": 2}}


# -- item 11: datasets -------------------------------------------------------------------------------------

def sweep_jsonl(tmp_path: Path, data: bytes, *extra: str):
    path = tmp_path / "data.jsonl"
    path.write_bytes(data)
    return path, oomlab("sweep", "-t", "jsonl", "-T", f"path={path}", "-s", "greedy", "-n", "1", "-p", "5",
                        "--db", tmp_path / "x.db", *extra)


GOOD = b'{"question": "1+1", "answer": "2"}\n'


def test_a_lone_surrogate_names_file_and_line(tmp_path) -> None:
    path, out = sweep_jsonl(tmp_path, GOOD + b'{"question": "x \\ud800 y", "answer": "3"}\n')
    one_line_error(out, f"{path}: line 2", "surrogate", "\\ud800")


def test_a_surrogate_pair_is_fine(tmp_path) -> None:
    from oomlab.tasks.jsonl import read_jsonl

    path = tmp_path / "pair.jsonl"
    path.write_bytes(b'{"question": "\\ud83d\\ude00", "answer": "3"}\n')
    assert [r["question"] for _, r in read_jsonl(path)] == ["\U0001F600"]


def test_invalid_utf8_names_file_and_line(tmp_path) -> None:
    path, out = sweep_jsonl(tmp_path, GOOD + GOOD + b'{"question": "\xff\xfe", "answer": "3"}\n')
    one_line_error(out, f"{path}: line 3", "not UTF-8")


# -- item 11: --db -----------------------------------------------------------------------------------------

def bad_databases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    from oomlab.store import Store

    folder = tmp_path / "folder.db"
    folder.mkdir()
    text = tmp_path / "text.db"
    text.write_text("these are not the pages of an SQLite database, not at all\n" * 20)
    good = tmp_path / "good.db"
    Store(good).close()
    with sqlite3.connect(good) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE invoices (id INTEGER, amount REAL)")
    migrated_only = tmp_path / "migrated-only.db"  # says it is an oomlab database, has none of its tables
    names = [r[0] for r in sqlite3.connect(good).execute("SELECT name FROM _migrations")]
    with sqlite3.connect(migrated_only) as c:
        c.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        c.executemany("INSERT INTO _migrations VALUES (?, 'then')", [(n,) for n in names])
    return {
        "directory": (folder, "is a directory"),
        "not sqlite": (text, "is not an SQLite database"),
        "truncated": (truncated, "not a usable oomlab database"),
        "another program's": (other, "another program"),
        "another schema": (migrated_only, "cannot read the database"),
    }


@pytest.mark.parametrize("kind", ["directory", "not sqlite", "truncated", "another program's", "another schema"])
@pytest.mark.parametrize("command", [["runs"], ["show"], ["fit", "abc"], ["sweep", "-s", "greedy", "-n", "1", "-p", "1"]])
def test_a_bad_database_is_one_line(tmp_path, kind, command) -> None:
    path, message = bad_databases(tmp_path)[kind]
    line = one_line_error(oomlab(*command, "--db", path), message)
    assert str(path) in line or path.name in line


# -- item 11: --ladder, options ---------------------------------------------------------------------------

@pytest.mark.parametrize(("ladder", "needle"), [
    ("nan", "a budget must be a finite number, got nan"),
    ("inf", "a budget must be a finite number, got inf"),
    ("1.5", "ladder rung 1.5 is not a whole number"),
    ("1,,4", "takes numbers separated by commas"),
    ("1,x", "got 'x'"),
    ("0,2", "ladder rung 0 is not a whole number"),
])
def test_bad_ladders(tmp_path, ladder, needle) -> None:
    one_line_error(oomlab("sweep", "--ladder", ladder, "--db", tmp_path / "x.db"), needle)


@pytest.mark.parametrize(("args", "needles"), [
    (["-s", "best-of-n:scorr=logprob"],
     ["strategy 'best-of-n': unknown option 'scorr'", "did you mean 'scorer'?", "valid options: scorer, temperature"]),
    (["-T", "difficuly=3"],
     ["task 'arithmetic': unknown option 'difficuly'", "did you mean 'difficulty'?", "valid options: difficulty"]),
    (["-B", "n_thread=2"],
     ["backend 'llamacpp': unknown option 'n_thread'", "did you mean 'n_threads'?", "valid options:", "n_ctx"]),
    (["-s", "majority:temperature=hot"], ["strategy 'majority': option temperature takes a number, got 'hot'"]),
    (["-s", "beam:depth=two"], ["strategy 'beam': option depth takes a whole number, got 'two'"]),
    (["-s", "beam:depth=2.5"], ["option depth takes a whole number, got 2.5"]),
    (["-s", "greedy:temperature=0.5"], ["strategy 'greedy': unknown option 'temperature'; valid options: (none)"]),
    (["-s", "beam:scorer=prm,scorer_bse_url=http://x"],
     ["scorer 'prm': unknown option 'scorer_bse_url'", "did you mean 'scorer_base_url'?"]),
    (["-T", "shots=many"], ["task 'arithmetic': option shots takes a whole number, got 'many'"]),
    (["-B", "n_ctx=true"], ["backend 'llamacpp': option n_ctx takes a whole number, got true"]),
    (["-T", "nothing"], ["-T takes key=value, got 'nothing'"]),
    (["-s", "majority:=3"], ["bad option '=3'"]),
    (["-t", "jsonl", "-T", "path=x.jsonl", "-T", "questin_field=q"],
     ["task 'jsonl': unknown option 'questin_field'", "did you mean 'question_field'?"]),
])
def test_bad_options_name_the_valid_ones(tmp_path, args, needles) -> None:
    one_line_error(oomlab("sweep", *args, "--db", tmp_path / "x.db"), *needles)
    assert not (tmp_path / "x.db").exists(), "refused before the database (or the model) is touched"


def test_options_are_checked_against_the_constructor_of_any_registered_class() -> None:
    """No schema of its own: a class's signature is its schema."""
    from oomlab.errors import ConfigError
    from oomlab.registry import check_options

    class Plugin:
        def __init__(self, width: int = 3, label: str = "x", rate: float | None = None):
            pass

    assert check_options("strategy", "plugin", Plugin, {"width": "4", "label": 7, "rate": 1}) == \
        {"width": 4, "label": "7", "rate": 1}
    with pytest.raises(ConfigError, match=r"unknown option 'widht' \(did you mean 'width'\?\); valid options: "
                                          r"label, rate, width"):
        check_options("strategy", "plugin", Plugin, {"widht": 4})
    with pytest.raises(ConfigError, match="option rate takes a number .or none., got 'fast'"):
        check_options("strategy", "plugin", Plugin, {"rate": "fast"})


def test_a_coerced_strategy_value_is_canonical() -> None:
    from oomlab.sweep import SweepConfig

    cfg = SweepConfig(strategies=["beam:depth=2.0", "majority:temperature=0.7"], n=4)
    cfg.validate()
    assert cfg.strategies == ["beam:depth=2", "majority:temperature=0.7"]


# -- item 12: no silent acceptance ------------------------------------------------------------------------

def test_an_empty_dataset_is_an_error(tmp_path) -> None:
    path, out = sweep_jsonl(tmp_path, b"\n\n")
    one_line_error(out, str(path), "no problems")


@pytest.mark.parametrize(("flag", "value", "needle"), [
    ("--usd-per-hour", "-1", "--usd-per-hour must be a price of zero or more, got -1"),
    ("--usd-per-m-prompt", "-0.5", "--usd-per-m-prompt must be a price of zero or more"),
    ("--usd-per-m-completion", "-2", "--usd-per-m-completion must be a price of zero or more"),
    ("--usd-per-hour", "inf", "--usd-per-hour must be a price of zero or more, got inf"),
    ("--tdp-watts", "-5", "--tdp-watts must be a positive power in watts, got -5"),
    ("--tdp-watts", "0", "--tdp-watts must be a positive power in watts, got 0"),
])
def test_negative_prices_and_tdp_are_refused(tmp_path, flag, value, needle) -> None:
    one_line_error(oomlab("sweep", flag, value, "--db", tmp_path / "x.db"), needle)


@pytest.fixture
def scripted(monkeypatch):
    """Every backend the CLI names is oomlab.testing's scripted one (no model); run ids in order."""
    from oomlab.testing import ScriptedBackend

    monkeypatch.setattr("oomlab.sweep.create_backend", lambda name, **options: ScriptedBackend())
    ids, real = ["abc12345", "abc67890"], uuid.uuid4
    monkeypatch.setattr("oomlab.store.uuid.uuid4", lambda: uuid.UUID(hex=ids.pop(0) + "0" * 24) if ids else real())


def test_fewer_problems_than_asked_is_said_once_and_recorded(tmp_path, scripted) -> None:
    path = tmp_path / "two.jsonl"
    path.write_bytes(GOOD + b'{"question": "2+2", "answer": "4"}\n')
    db = tmp_path / "x.db"
    out = oomlab("sweep", "-t", "jsonl", "-T", f"path={path}", "-s", "majority", "-n", "2", "-p", "5", "--db", db,
                 "--json")
    assert out.exit_code == 0, out.output
    warnings = [line for line in out.stderr.splitlines() if line.strip()]
    assert warnings == [f"warning: task 'jsonl' has 2 problems, fewer than --problems 5; sweeping all 2"]
    record = json.loads(out.stdout)
    runs = json.loads(oomlab("runs", "--db", db, "--json").stdout)
    assert [r["problems"] for r in runs] == [2] and runs[0]["id"] == record["run_id"]
    show = json.loads(oomlab("show", "--db", db, "--json").stdout)
    assert (show["problems_covered"], show["problems"]) == (2, 2)


# -- item 13: run ids ---------------------------------------------------------------------------------------

@pytest.fixture
def two_runs(tmp_path, scripted) -> Path:
    """Runs abc12345 (seed 0) then abc67890 (seed 1): greedy and majority, 3 problems, N=2."""
    db = tmp_path / "runs.db"
    for seed in ("0", "1"):
        out = oomlab("sweep", "-s", "greedy", "-s", "majority", "-n", "2", "-p", "3", "--seed", seed,
                     "--db", db, "--json")
        assert out.exit_code == 0, out.output
    return db


def test_runs_never_cuts_an_id_at_80_columns(two_runs, oomlab_cmd) -> None:
    env = {**os.environ, "COLUMNS": "80", "LINES": "40"}
    out = subprocess.run([*oomlab_cmd, "runs", "--db", str(two_runs)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "abc12345" in out.stdout and "abc67890" in out.stdout
    assert "interrupted" not in out.stdout and out.stdout.count("done") == 2
    assert max(len(line) for line in out.stdout.splitlines()) <= 80


@pytest.mark.parametrize("command", [
    ["show"], ["plot", "-o", "{tmp}/p.png"], ["fit", "--n-boot", "0"], ["trace", "-p", "0", "-s", "majority"],
    ["report", "-o", "{tmp}/r.html", "--n-boot", "0"], ["ooms", "--json", "--run"],
])
def test_a_run_is_named_by_prefix_or_latest_and_defaults_to_the_latest(two_runs, command) -> None:
    tmp = str(two_runs.parent)
    args = [a.replace("{tmp}", tmp) for a in command]
    trailing = args[-1] == "--run"  # `ooms --run` takes its run as the option's value
    for ref, want in [(None, "abc67890"), ("latest", "abc67890"), ("abc1", "abc12345"), ("abc12345", "abc12345")]:
        if trailing:
            if ref is None:
                continue
            full = [args[0], "--db", str(two_runs), *args[1:], ref]
        else:
            full = [args[0], *([] if ref is None else [ref]), "--db", str(two_runs), *args[1:]]
        out = oomlab(*full)
        if args[0] == "trace":  # majority keeps no tree: the refusal comes after the run was found
            one_line_error(out, "records no search tree")
            continue
        assert out.exit_code == 0, (full, out.output)
        if args[0] in ("show", "fit", "ooms"):
            assert json.loads(oomlab(*full, "--json").stdout if "--json" not in full else out.stdout)["run_id"] == want


@pytest.mark.parametrize("command", [
    ["show", "abc"], ["plot", "abc"], ["fit", "abc"], ["trace", "abc", "-p", "0", "-s", "majority"],
    ["report", "abc"], ["report", "latest", "abc"], ["compare", "abc", "latest", "--train-tokens-a", "1",
                                                       "--train-tokens-b", "2"],
    ["exchange", "abc", "latest", "--train-flops", "1", "--train-flops", "2"],
    ["sweep", "--resume", "abc", "-s", "greedy"], ["ooms", "--run", "abc"],
])
def test_an_ambiguous_prefix_lists_the_candidates_in_one_line(two_runs, command) -> None:
    one_line_error(oomlab(command[0], "--db", two_runs, *command[1:]),
                   "run prefix 'abc' matches 2 runs", "abc67890, abc12345", "give more of the id")


@pytest.mark.parametrize("command", [
    ["compare", "abc1", "latest", "--train-tokens-a", "6e12", "--train-tokens-b", "6e12", "--params-a", "1e6",
     "--params-b", "2e6", "--n-boot", "0", "--json"],
    ["exchange", "abc1", "latest", "--train-flops", "1e20", "--train-flops", "1e21", "--json"],
])
def test_two_run_commands_take_prefixes(two_runs, command) -> None:
    out = oomlab(command[0], "--db", two_runs, *command[1:])
    if command[0] == "exchange":  # found both runs; two tiny scripted curves need not overlap enough for a rate
        line = one_line_error(out, "no target accuracy")
        assert "no run" not in line and "prefix" not in line
        return
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert {data["small"]["run_id"], data["large"]["run_id"]} == {"abc12345", "abc67890"}


def test_resume_takes_a_prefix_and_latest(tmp_path, scripted) -> None:
    from oomlab.store import Store

    db = tmp_path / "x.db"
    store = Store(db)
    from oomlab.backends.base import ModelFacts
    from oomlab.ledger import Pricing

    facts = ModelFacts("m", 10, 5, 1, 4, 4, 16)
    rid = store.create_run({"a": 1}, backend="b", model_id="m", facts=facts, task="t", energy_method="e",
                           pricing=Pricing(1.0), version="0")
    store.finish_run(rid)
    store.close()
    for ref in ("latest", rid[:3]):
        one_line_error(oomlab("sweep", "--resume", ref, "--db", db), f"run {rid} is finished")
    one_line_error(oomlab("sweep", "--resume", "zzz", "--db", db), "no run 'zzz'", rid)


def test_an_empty_database_says_there_are_no_runs(tmp_path) -> None:
    from oomlab.store import Store

    Store(tmp_path / "x.db").close()
    one_line_error(oomlab("show", "--db", tmp_path / "x.db"), "no runs in", "run a sweep first")


# -- item 14: --help ------------------------------------------------------------------------------------------

def all_commands():
    from typer.main import get_command

    def walk(cmd, path):
        yield path
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, [*path, name])

    return list(walk(get_command(app), []))


NOISE = ("<bool>", "<str>", "<int>", "<float>", "<path>", "<list[")


def test_no_help_shows_python_types() -> None:
    """Every command: no `<bool>` / `<list[str]>`, no unread rich markup, nothing wider than 80 columns."""
    for path in all_commands():
        out = oomlab(*path, "--help", env={"COLUMNS": "80"})
        assert out.exit_code == 0, (path, out.output)
        for noise in (*NOISE, "[/"):
            assert noise not in out.stdout, (path, noise, out.stdout)
        assert max(map(len, out.stdout.splitlines())) <= 80, (path, out.stdout)


def test_sweep_help_at_80_columns_reads_like_a_command_line(oomlab_cmd) -> None:
    out = subprocess.run([*oomlab_cmd, "sweep", "--help"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "COLUMNS": "80"})
    assert out.returncode == 0
    text = out.stdout
    assert max(len(line) for line in text.splitlines()) <= 80
    for flag in ("-n, --n INTEGER", "-t, --task TEXT", "--db PATH", "--ladder TEXT", "--wait / --no-wait",
                 "--json ", "--tdp-watts FLOAT"):
        assert flag in text, flag
    assert "<" not in text.replace("<=", "")
    show = subprocess.run([*oomlab_cmd, "show", "--help"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "80"}).stdout
    assert "show [OPTIONS] [RUN]" in show and "'latest' (the default)" in show

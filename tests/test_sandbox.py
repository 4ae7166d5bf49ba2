"""The sandbox stops hostile programs with a clear error and keeps working; the calculator is safe.

Programs run under bubblewrap (the default) unless a test names the unsafe guard; the guard's
exact messages are checked where they are all there is. tests/sandbox/ holds the hostile-program
suite, which tests the OS boundary alone (guard off).
"""

from __future__ import annotations

import math
import os
import shutil
import socket
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oomlab.sandbox as sandbox_module
from oomlab.backends.base import GenRequest, Generation
from oomlab.calculator import evaluate_arithmetic
from oomlab.errors import ConfigError
from oomlab.sandbox import (
    UNSAFE_GUARD,
    UNSAFE_LABEL,
    SandboxResult,
    bubblewrap,
    network_namespace_available,
    redact,
    run_python,
    sandbox_label,
)
from oomlab.strategies.tool import Tool
from oomlab.sweep import parse_spec, spec_key
from oomlab.tasks.base import create_task

WRITE_BLOCKED = "write outside the sandbox's temp dir blocked"
SLACK_S = 5.0  # interpreter start-up on a busy CI machine
HAVE_BWRAP = shutil.which("bwrap") is not None
RUN_WITHOUT_BWRAP = ("test_calculator", "test_without_bubblewrap", "test_invalid_limits", "test_a_sandbox_that_cannot",
                     "test_the_unsafe_guard_is_named")  # fmt: skip
BOTH = pytest.mark.parametrize("sandbox", ["bubblewrap", UNSAFE_GUARD])


@pytest.fixture(autouse=True)
def _needs_bwrap(request: pytest.FixtureRequest) -> None:
    """Every test that runs a program under bubblewrap is skipped where bwrap is missing (CI installs it)."""
    if not HAVE_BWRAP and not request.node.name.startswith(RUN_WITHOUT_BWRAP):
        pytest.skip("bubblewrap (bwrap) is not installed")


# ---------------------------------------------------------------- normal programs


@BOTH
def test_normal_program_returns_its_stdout(sandbox):
    result = run_python("print(sum(range(10)))", sandbox=sandbox)
    assert isinstance(result, SandboxResult)
    assert result.ok and result.error is None and result.returncode == 0
    assert result.stdout == "45\n"
    assert result.stderr == ""
    assert 0 < result.seconds < 5.0
    assert result.sandbox == (UNSAFE_LABEL if sandbox == UNSAFE_GUARD else sandbox_label())


@BOTH
def test_writing_inside_its_temp_dir_works(sandbox):
    code = (
        "import os, tempfile, pathlib\n"
        "open('a.txt', 'w').write('hello')\n"
        "os.makedirs('d/e')\n"
        "os.rename('a.txt', 'd/e/b.txt')\n"
        "p = pathlib.Path(tempfile.mkdtemp()) / 'c.txt'\n"
        "p.write_text('world')\n"
        "print(open('d/e/b.txt').read(), p.read_text())\n"
        "os.remove('d/e/b.txt')\n"
    )
    result = run_python(code, sandbox=sandbox)
    assert result.ok, result.stderr
    assert result.stdout == "hello world\n"


@BOTH
def test_temp_dir_is_removed_afterwards(sandbox):
    result = run_python("import os; open('x', 'w').write('x'); print(os.getcwd())", sandbox=sandbox)
    assert result.ok
    workdir = result.stdout.strip()
    assert os.path.basename(workdir).startswith("oomlab-sandbox-")
    assert not os.path.exists(workdir)


@BOTH
def test_exception_becomes_the_error_with_traceback_on_stderr(sandbox):
    result = run_python("def f():\n    return 1 / 0\nf()\n", sandbox=sandbox)
    assert not result.ok and result.returncode == 1
    assert result.error == "ZeroDivisionError: division by zero"
    assert "main.py" in result.stderr and "return 1 / 0" in result.stderr
    assert "hook" not in result.stderr  # the guard's own frames are not shown


def test_syntax_error_and_exit_status():
    assert run_python("def f(:").error == "SyntaxError: invalid syntax (line 1)"
    result = run_python("import sys; print('bye'); sys.exit(3)")
    assert (result.ok, result.returncode, result.error, result.stdout) == (False, 3, "exited with status 3", "bye\n")
    assert run_python("import sys; sys.exit(0)").ok


def test_numpy_works_inside_the_limits():
    result = run_python("import numpy as np; print(int(round(np.linalg.det(np.eye(3) * 2))))")
    assert result.ok, result.stderr
    assert result.stdout == "8\n"


@BOTH
def test_environment_is_not_inherited(monkeypatch, sandbox):
    monkeypatch.setenv("OOMLAB_TEST_SECRET", "hunter2")
    result = run_python("import os; print(sorted(os.environ))", sandbox=sandbox)
    assert result.ok
    assert "OOMLAB_TEST_SECRET" not in result.stdout


def test_secret_values_in_output_are_redacted(monkeypatch):
    monkeypatch.setenv("OOMLAB_TEST_TOKEN", "sk-live-0123456789abcdef")
    monkeypatch.setenv("OOMLAB_TEST_NUMBER", "12345678")
    code = "import sys; print('key sk-live-0123456789abcdef', 12345678); sys.exit('sk-live-0123456789abcdef')"
    result = run_python(code)
    assert result.stdout == "key [redacted $OOMLAB_TEST_TOKEN] 12345678\n"  # numbers are answers: kept
    assert "sk-live" not in result.stderr
    plain = SandboxResult("hunter2 and a long secret value", "", 0, True, None, 0.0)
    assert redact(plain, {"A": "hunter2", "B": "long secret value"}).stdout == "hunter2 and a [redacted $B]"


def test_invalid_limits_are_config_errors():
    with pytest.raises(ConfigError):
        run_python("pass", timeout_s=0)
    with pytest.raises(ConfigError):
        run_python("pass", memory_mb=1)
    with pytest.raises(ConfigError):
        run_python("pass", max_output_bytes=-1)
    with pytest.raises(ConfigError, match="unknown sandbox"):
        run_python("pass", sandbox="none")
    with pytest.raises(ConfigError):
        run_python("pass", sandbox=UNSAFE_GUARD, audit_guard=False)


# ---------------------------------------------------------------- the four hostile programs


def test_infinite_loop_is_stopped_at_the_timeout():
    result = run_python("while True: pass", timeout_s=1.5)
    assert not result.ok
    assert result.error == "timed out after 1.5 s"
    assert 1.5 <= result.seconds < 1.5 + SLACK_S


def test_sleeping_program_is_stopped_at_the_timeout():
    result = run_python("import time; print('start', flush=True); time.sleep(60)", timeout_s=1.0)
    assert result.error == "timed out after 1.0 s"
    assert result.stdout == "start\n"  # what it printed before is kept
    assert result.seconds < 1.0 + SLACK_S


def test_ten_gigabyte_allocation_is_stopped_by_the_memory_limit():
    result = run_python("x = bytearray(10 * 1024**3)", memory_mb=256)
    assert not result.ok
    assert result.error == "memory limit 256 MB exceeded"
    assert result.seconds < SLACK_S


def test_gradual_allocation_is_stopped_by_the_memory_limit():
    result = run_python("chunks = []\nwhile True:\n    chunks.append(bytearray(10 * 1024**2))", memory_mb=128)
    assert result.error == "memory limit 128 MB exceeded"


def test_socket_is_blocked_and_nothing_connects():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.5)
        port = server.getsockname()[1]
        result = run_python(f"import socket; socket.create_connection(('127.0.0.1', {port}))")
        assert not result.ok
        assert result.error is not None and result.error.startswith("network access blocked")
        with pytest.raises(socket.timeout):
            server.accept()


def test_socket_to_the_discard_port_is_blocked():
    result = run_python("import socket; socket.create_connection(('127.0.0.1', 9))")
    assert result.error is not None and result.error.startswith("network access blocked")
    assert result.seconds < SLACK_S


def test_caught_violation_is_still_recorded():
    code = "import socket\ntry:\n    socket.socket()\nexcept OSError as e:\n    print('caught')\n"
    result = run_python(code)
    assert result.stdout == "caught\n" and result.returncode == 0
    assert not result.ok
    assert result.error == "network access blocked (socket.__new__)"


def test_writing_outside_the_temp_dir_is_blocked(tmp_path):
    target = tmp_path / "escape.txt"
    result = run_python(f"open({str(target)!r}, 'w').write('escaped')")
    assert not result.ok
    assert result.error == f"{WRITE_BLOCKED} (open {target})"
    assert not target.exists()


@pytest.mark.parametrize(
    "code",
    [
        "import pathlib; pathlib.Path({victim!r}).write_text('x')",
        "open({victim!r}, 'a').write('x')",
        "open({victim!r}, 'r+').write('x')",
        "import os; os.remove({victim!r})",
        "import os; os.rename({victim!r}, 'stolen.txt')",
        "import os; os.chmod({victim!r}, 0o777)",
        "import os; os.truncate({victim!r}, 0)",
        "import os; os.utime({victim!r}, (0, 0))",
        "import shutil; shutil.rmtree({folder!r})",
        "import os; os.mkdir({folder!r} + '/new')",
        "import os; os.close(os.open({folder!r} + '/new', os.O_CREAT | os.O_WRONLY))",
        "import os; d = os.open({folder!r}, os.O_RDONLY); os.unlink('victim.txt', dir_fd=d)",
        "import os; os.chdir({folder!r}); open('new', 'w')",
        "import os; open(os.path.relpath({victim!r}), 'w')",
        "import os; os.symlink({victim!r}, 'link')",
        "import os; os.link({victim!r}, 'hard')",
        "import shutil; shutil.copyfile('main.py', {victim!r})",
    ],
)
@BOTH
def test_every_kind_of_write_outside_is_blocked(tmp_path, code, sandbox):
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_python(code.format(victim=str(victim), folder=str(tmp_path)), sandbox=sandbox)
    assert not result.ok
    if sandbox == UNSAFE_GUARD:  # the guard's message; under bubblewrap the host path is simply not there
        assert result.error is not None and result.error.startswith(WRITE_BLOCKED), result.error
    assert victim.read_text() == "original"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    "code",
    [
        "import os; os.system('true')",
        "import subprocess; subprocess.run(['true'])",
        "import os; os.fork()",
        "import os; os.execv('/bin/true', ['true'])",
        "import os; os.posix_spawn('/bin/true', ['true'], {{}})",
        "import multiprocessing; multiprocessing.Process(target=print).start()",
    ],
)
@BOTH
def test_process_creation_is_blocked(code, sandbox):
    result = run_python(code.format(), sandbox=sandbox)
    assert result.error is not None and result.error.startswith("process creation blocked"), result.error


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import ctypes; ctypes.CDLL('libc.so.6')", "native code access blocked"),
        ("import ctypes; ctypes.CDLL(None).system(b'true')", "native code access blocked"),
        ("import ctypes; ctypes.string_at(id(1), 8)", "native code access blocked"),
        ("import sqlite3", "sqlite3 blocked"),
        ("import resource; resource.setrlimit(resource.RLIMIT_AS, (-1, -1))", "changing resource limits blocked"),
        ("import os, signal; os.kill(os.getppid(), signal.SIGTERM)", "signalling other processes blocked"),
        ("import gc; gc.get_objects()", "interpreter introspection blocked"),
    ],
)
@BOTH
def test_other_escapes_are_blocked(code, expected, sandbox):
    result = run_python(code, sandbox=sandbox)
    assert result.error is not None and result.error.startswith(expected), result.error


def test_output_is_capped():
    result = run_python("print('x' * 100_000)", max_output_bytes=1000)
    assert not result.ok
    assert result.error == "output truncated at 1000 bytes"
    assert result.stdout == "x" * 1000


def test_endless_output_is_capped_quickly():
    result = run_python("while True: print('spam' * 100)", max_output_bytes=64_000)
    assert result.error == "output truncated at 64000 bytes"
    assert len(result.stdout.encode()) == 64_000
    assert result.seconds < SLACK_S


def test_files_it_writes_are_capped():
    result = run_python("open('big', 'wb').write(b'x' * (32 * 1024 * 1024))", memory_mb=256)
    assert not result.ok
    assert result.error == "OSError: [Errno 27] File too large"


@pytest.mark.parametrize("kind", ["net", "pid", "user", "ipc", "uts", "mnt"])
def test_runs_in_its_own_namespaces(kind):
    result = run_python(f"import os; print(os.readlink('/proc/self/ns/{kind}'))")
    assert result.ok, result
    assert result.stdout.strip() != os.readlink(f"/proc/self/ns/{kind}")


def test_unsafe_guard_runs_in_its_own_network_namespace_where_it_can():
    if not network_namespace_available():
        pytest.skip("unshare cannot create a network namespace here")
    result = run_python("import os; print(os.readlink('/proc/self/ns/net'))", sandbox=UNSAFE_GUARD)
    assert result.ok
    assert result.stdout.strip() != os.readlink("/proc/self/ns/net")


def test_the_sandbox_is_pid_1_of_an_empty_world():
    code = "import os; print(os.getpid(), sorted(p for p in os.listdir('/proc') if p.isdigit()), os.getuid())"
    result = run_python(code)
    assert result.ok, result.error
    assert result.stdout == "1 ['1'] 65534\n"


@BOTH
def test_the_sweep_continues_after_hostile_programs(tmp_path, sandbox):
    hostile = [
        ("while True: pass", "timed out after 1.0 s"),
        ("x = bytearray(10 * 1024**3)", "memory limit 256 MB exceeded"),
        ("import socket; socket.create_connection(('127.0.0.1', 9))", "network access blocked"),
        (f"open({str(tmp_path / 'x')!r}, 'w')", WRITE_BLOCKED),
        ("print('y' * 10**6)", "output truncated at 64000 bytes"),
    ]
    for _ in range(2):
        for code, expected in hostile:
            result = run_python(code, timeout_s=1.0, sandbox=sandbox)
            assert result.error is not None and result.error.startswith(expected), (code, result.error)
        assert run_python("print(6 * 7)", sandbox=sandbox).stdout == "42\n"
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- without bubblewrap; the tool strategy


@pytest.fixture
def no_bwrap(monkeypatch, tmp_path):
    """bwrap made unfindable: PATH without it, and no path set in the module."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(bubblewrap, "BWRAP", "bwrap")


class ScriptedBackend:
    """Returns `texts` as the model's programs, and counts the requests."""

    name, model_id, facts = "scripted", "scripted", None

    def __init__(self, texts: list[str]) -> None:
        self.texts, self.requests = texts, 0

    def generate(self, request: GenRequest) -> list[Generation]:
        self.requests += 1
        return [Generation(self.texts[i % len(self.texts)], 5, 2, 0.0, s) for i, s in enumerate(request.seeds)]


TASK = create_task("arithmetic", difficulty=1)
PROBLEM = TASK.problems(1, seed=0)[0]


@pytest.mark.parametrize("how", ["path", "module"])
def test_without_bubblewrap_run_python_refuses_in_one_line(monkeypatch, tmp_path, how):
    if how == "path":
        monkeypatch.setenv("PATH", str(tmp_path))
    else:
        monkeypatch.setattr(bubblewrap, "BWRAP", str(tmp_path / "no-such-bwrap"))
    with pytest.raises(ConfigError) as refused:
        run_python("print(1)")
    message = str(refused.value)
    assert "\n" not in message
    assert "apt-get install bubblewrap" in message and "dnf install bubblewrap" in message
    assert "tool:sandbox=unsafe-guard" in message
    assert run_python("print(1)", sandbox=UNSAFE_GUARD).stdout == "1\n"  # the explicit unsafe option still runs


def test_without_bubblewrap_the_tool_strategy_refuses_before_spending_tokens(no_bwrap):
    tool = Tool()  # constructing it (as `oomlab show` does for a stored run) needs no sandbox
    assert tool.label() == "tool"
    backend = ScriptedBackend(["print(1)"])
    with pytest.raises(ConfigError, match="apt-get install bubblewrap"):
        tool.solve(PROBLEM, TASK, backend, 2)
    assert backend.requests == 0
    with pytest.raises(ConfigError):
        tool.run_program("print(1)")
    Tool(mode="calculator").solve(PROBLEM, TASK, ScriptedBackend(["1 + 1"]), 1)  # runs no code: no sandbox needed


def test_a_sandbox_that_cannot_start_is_one_line(monkeypatch, tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\n[ \"$1\" = --version ] && echo 'bubblewrap 9.9' && exit 0\necho 'bwrap: no namespaces' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(bubblewrap, "BWRAP", str(fake))
    with pytest.raises(ConfigError) as refused:
        run_python("print(1)")
    assert "bwrap: no namespaces" in str(refused.value) and "\n" not in str(refused.value)


def test_tool_trace_names_its_sandbox():
    programs = [f"print({PROBLEM.reference!r})"]
    attempt = Tool().solve(PROBLEM, TASK, ScriptedBackend(programs), 2)
    assert attempt.trace["sandbox"] == sandbox_label() and attempt.trace["sandbox"].startswith("bubblewrap ")
    assert attempt.correct and attempt.trace["errors"] == 0


def test_the_unsafe_guard_is_named_everywhere(no_bwrap):
    name, options = parse_spec("tool:sandbox=unsafe-guard")
    assert spec_key(name, options) == "tool:sandbox=unsafe-guard"  # the key tables, plots and reports show
    tool = Tool(**options)
    assert "UNSAFE" in tool.label() and tool.config()["sandbox"] == UNSAFE_GUARD
    attempt = tool.solve(PROBLEM, TASK, ScriptedBackend([f"print({PROBLEM.reference!r})"]), 1)
    assert attempt.trace["sandbox"] == UNSAFE_LABEL == "UNSAFE in-process guard (no OS isolation)"
    assert attempt.correct
    with pytest.raises(ConfigError, match="tool sandbox must be one of"):
        Tool(sandbox="none")


def test_no_temp_dir_is_made_on_the_host(monkeypatch, tmp_path):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(sandbox_module.tempfile, "tempdir", None)
    assert run_python("print(1)").ok
    assert list(Path(tmp_path).iterdir()) == []


# ---------------------------------------------------------------- the calculator


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("2 + 3 * 4", 14),
        ("(1 + 2) ** 3", 27),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("-7 % 3", 2),
        ("-2 ** 2", -4),
        ("2 ** -1", 0.5),
        ("+5 - -5", 10),
        ("1.5e3 * 2", 3000.0),
        ("3 × 4 ÷ 6 − 1", 1.0),
        ("2^10", 1024),
        ("  ( 12 )  ", 12),
        ("10 ** 100 // 10 ** 99", 10),
    ],
)
def test_calculator_values(expr, value):
    result = evaluate_arithmetic(expr)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize(
    "expr",
    [
        "x",
        "abs(-1)",
        "__import__('os').system('true')",
        "(1).__class__",
        "[1, 2][0]",
        "1 < 2",
        "1 if 1 else 2",
        "lambda: 1",
        "'a' * 3",
        "True + 1",
        "1j * 1j",
        "1 & 3",
        "1 << 3",
        "~1",
        "not 1",
        "9 ** 9 ** 9",
        "2 ** 100000",
        "(10 ** 999) ** 999",
        "(10 ** 900) ** 10 * (10 ** 900) ** 10",
        "1 / 0",
        "5 % 0",
        "0 ** -1",
        "(-8) ** 0.5",
        "10 ** 400 / 3 ** 0.5 * 1e300 ** 2.0",
        "",
        "1 +",
        "(" * 300 + "1" + ")" * 300,
        "-" * 1500 + "1",
        "1" * 3000,
    ],
)
def test_calculator_refuses(expr):
    with pytest.raises(ValueError):
        evaluate_arithmetic(expr)


def _expressions() -> st.SearchStrategy[str]:
    leaves = st.integers(0, 30).map(str) | st.sampled_from(["0.5", "2.25", "10.0"])

    def grow(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/", "//", "%"]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        )
        power = st.tuples(children, st.integers(0, 3)).map(lambda t: f"({t[0]}) ** {t[1]}")
        negation = children.map(lambda c: f"-{c}")
        return binary | power | negation

    return st.recursive(leaves, grow, max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(_expressions())
def test_calculator_agrees_with_python(expr):
    try:
        expected = eval(expr, {"__builtins__": {}}, {})  # trusted: built from numbers and operators only
    except (ZeroDivisionError, OverflowError):
        with pytest.raises(ValueError):
            evaluate_arithmetic(expr)
        return
    if isinstance(expected, complex):
        with pytest.raises(ValueError):
            evaluate_arithmetic(expr)
        return
    result = evaluate_arithmetic(expr)
    assert type(result) is type(expected)
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(result)
    else:
        assert result == expected

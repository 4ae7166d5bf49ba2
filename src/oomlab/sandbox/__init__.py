"""Run model-written Python where it can do no harm (program-of-thought, tool use).

`run_python(code)` runs `code` in a fresh `python -I -B` behind an OS boundary and returns what
it printed, or a clear error when the program had to be stopped. It never raises for anything the
program does, so a sweep records the error on the sample and goes on to the next one.

sandbox="bubblewrap" (the default, Linux): the program runs in new user, pid, network, IPC, UTS
and cgroup namespaces with a read-only view of the system and a size-limited private tmpfs (see
bubblewrap.py). Limits, set by its interpreter before any of the program runs, hard = soft, with
no capability left that could raise them: CPU time, address space, file size, processes. A
wall-clock deadline kills the sandbox's pid 1, and with it every process the program started.
Nothing survives it: no temp dir exists on the host, and bwrap's --die-with-parent kills the
sandbox when this process dies, SIGKILL included. Inside, the audit-hook guard of child.py is
defence in depth and turns the common refusals into readable errors ("network access blocked").
Where bwrap is missing or cannot create namespaces, asking for it is a one-line ConfigError.

sandbox="unsafe-guard": the audit-hook guard alone, in a host temp dir, as the caller's uid. It
stops the mistakes of model-written code, not code written to escape it (it can read any file the
caller can), so it runs only when asked for by name, and results say so (`SandboxResult.sandbox`).

Secrets: the program cannot read the parent's environment (no process of the sandbox, bwrap's
own included, is given it), memory (another pid namespace) or files (only the system view). As a
cheap second line, any value of the parent's environment of 8 or more characters (except numbers,
paths that exist and a few well-known non-secret variables) that shows up in the program's output
or error is replaced by `[redacted $NAME]` before anything stores it: a false alarm garbles one
line of output, a miss would put an API key in the database.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import secrets
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from oomlab.errors import ConfigError
from oomlab.sandbox import bubblewrap
from oomlab.sandbox.bubblewrap import Bubblewrap
from oomlab.sandbox.unsafe import network_namespace_available, network_namespace_prefix, remove_tree

__all__ = ["BUBBLEWRAP", "MAX_FILE_BYTES", "MAX_PROCESSES", "MAX_TMP_BYTES", "SANDBOXES", "UNSAFE_GUARD", "UNSAFE_LABEL",
           "SandboxResult", "network_namespace_available", "redact", "run_python", "sandbox_label"]

BUBBLEWRAP, UNSAFE_GUARD = "bubblewrap", "unsafe-guard"
SANDBOXES = (BUBBLEWRAP, UNSAFE_GUARD)
UNSAFE_LABEL = "UNSAFE in-process guard (no OS isolation)"
MAX_FILE_BYTES = 16 * 1024 * 1024  # RLIMIT_FSIZE: the largest file the program may write
MAX_TMP_BYTES = 64 * 1024 * 1024  # the sandbox's whole writable disk (a tmpfs, so memory)
MAX_PROCESSES = 16  # RLIMIT_NPROC inside the sandbox's user namespace, threads included
_STATUS_LIMIT = 64 * 1024
_CHILD = Path(__file__).with_name("child.py").read_text(encoding="utf-8")
_THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
_NOT_SECRET = {"PATH", "HOME", "PWD", "OLDPWD", "SHELL", "TERM", "LANG", "LANGUAGE", "USER", "LOGNAME", "TMPDIR"}
_NUMBER = re.compile(r"[\d\s.,:+\-eE_/%]*")


@dataclass(frozen=True)
class SandboxResult:
    """What a program did: its output, exit status, and why it failed (None when it did not)."""

    stdout: str
    stderr: str
    returncode: int  # negative: killed by that signal
    ok: bool  # exited 0 and nothing was blocked or cut off
    error: str | None  # a sentence for people: "timed out after 5.0 s", "network access blocked (...)"
    seconds: float
    sandbox: str = ""  # what isolated it: "bubblewrap 0.8.0", or UNSAFE_LABEL


def sandbox_label(sandbox: str = BUBBLEWRAP) -> str:
    """What runs programs under `sandbox`, for traces; a one-line ConfigError when it cannot run here."""
    if sandbox == UNSAFE_GUARD:
        return UNSAFE_LABEL
    if sandbox != BUBBLEWRAP:
        raise ConfigError(f"unknown sandbox '{sandbox}'; valid sandboxes: {', '.join(SANDBOXES)}")
    return _bubblewrap().label()


def run_python(
    code: str, *, timeout_s: float = 5.0, memory_mb: int = 256, max_output_bytes: int = 64_000,
    sandbox: str = BUBBLEWRAP, audit_guard: bool = True,
) -> SandboxResult:  # fmt: skip
    """Run `code` in a sandboxed child Python; never raises for anything the code does.

    `audit_guard=False` leaves the OS boundary alone between the program and the host (tests of it).
    """
    if not timeout_s > 0:
        raise ConfigError(f"sandbox timeout must be positive, got {timeout_s}")
    if memory_mb < 32:
        raise ConfigError(f"sandbox memory limit must be at least 32 MB, got {memory_mb}")
    if max_output_bytes < 0:
        raise ConfigError(f"sandbox output limit must be >= 0, got {max_output_bytes}")
    if sandbox == BUBBLEWRAP:
        result = _run_bubblewrap(_bubblewrap(), code, timeout_s, memory_mb, max_output_bytes, audit_guard)
    elif sandbox == UNSAFE_GUARD:
        if not audit_guard:
            raise ConfigError("the unsafe-guard sandbox is nothing but its guard: it cannot run without it")
        result = _run_unsafe(code, timeout_s, memory_mb, max_output_bytes)
    else:
        raise ConfigError(f"unknown sandbox '{sandbox}'; valid sandboxes: {', '.join(SANDBOXES)}")
    return redact(result, os.environ)


def redact(result: SandboxResult, environ: Mapping[str, str]) -> SandboxResult:
    """`result` with every secret-looking value of `environ` replaced by `[redacted $NAME]`."""
    found = sorted(((v, k) for k, v in environ.items() if _looks_secret(k, v)), key=lambda s: -len(s[0]))

    def clean(text: str) -> str:
        for value, name in found:
            if value in text:
                text = text.replace(value, f"[redacted ${name}]")
        return text

    error = clean(result.error) if result.error else result.error
    return replace(result, stdout=clean(result.stdout), stderr=clean(result.stderr), error=error)


def _looks_secret(name: str, value: str) -> bool:
    """8+ characters, not a number (answers are numbers), not a well-known variable, not a path that exists."""
    if len(value) < 8 or name in _NOT_SECRET or name.startswith("LC_") or _NUMBER.fullmatch(value):
        return False
    return not (value.startswith("/") and os.path.exists(value))


# ---------------------------------------------------------------- the two ways to run


def _bubblewrap() -> Bubblewrap:
    probed = _probe(bubblewrap.find())
    if isinstance(probed, str):
        raise ConfigError(probed)
    return probed


@functools.cache
def _probe(found: Bubblewrap) -> Bubblewrap | str:
    """The first way of running bwrap that gets a Python started here, or why none does (cached)."""
    why = "no output"
    for candidate in bubblewrap.variants(found):
        try:
            result = _run_bubblewrap(candidate, "print('ok')", 30.0, 256, 1000, guard=False)
        except OSError as e:
            why = str(e)
            continue
        if result.stdout == "ok\n":
            return candidate
        why = (result.stderr.strip().splitlines() or [result.error or why])[-1]
    return (f"bubblewrap {found.version} at {found.path} cannot create its sandbox here ({why}): it needs user "
            f"namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0); "
            "or choose tool:sandbox=unsafe-guard to run model-written code UNSAFELY, without OS isolation")


def _run_bubblewrap(
    bw: Bubblewrap, code: str, timeout_s: float, memory_mb: int, max_output_bytes: int, guard: bool
) -> SandboxResult:
    workdir = f"/tmp/oomlab-sandbox-{secrets.token_hex(4)}"
    code_fd = os.memfd_create("main.py", 0)  # copied into the sandbox's tmpfs: never on the host's disk
    try:
        with open(code_fd, "wb", closefd=False) as f:
            f.write(code.encode("utf-8", "replace"))
        os.lseek(code_fd, 0, os.SEEK_SET)
        env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               **_THREADS}  # fmt: skip

        def argv(status_w: int, info_w: int) -> list[str]:
            program = _child_argv(workdir, status_w, timeout_s, memory_mb, MAX_PROCESSES, guard)
            return bubblewrap.command(bw, workdir=workdir, code_fd=code_fd, info_fd=info_w,
                                      tmp_bytes=MAX_TMP_BYTES, env=env, program=program)  # fmt: skip

        result = _execute(argv, (code_fd,), "/", {}, timeout_s, memory_mb, max_output_bytes, bw.label(), True)
    finally:
        os.close(code_fd)
    return result


def _run_unsafe(code: str, timeout_s: float, memory_mb: int, max_output_bytes: int) -> SandboxResult:
    root = os.path.realpath(tempfile.mkdtemp(prefix="oomlab-sandbox-"))
    try:
        with open(os.path.join(root, "main.py"), "w", encoding="utf-8", errors="replace") as f:
            f.write(code)
        env = {"HOME": root, "TMPDIR": root, "LC_ALL": "C.UTF-8", "PATH": os.defpath, **_THREADS}

        def argv(status_w: int, _info_w: int) -> list[str]:
            return [*network_namespace_prefix(), *_child_argv(root, status_w, timeout_s, memory_mb, 0, True)]

        return _execute(argv, (), root, env, timeout_s, memory_mb, max_output_bytes, UNSAFE_LABEL, False)
    finally:
        remove_tree(root)


def _child_argv(root: str, status_w: int, timeout_s: float, memory_mb: int, nproc: int, guard: bool) -> list[str]:
    cpu = math.ceil(timeout_s) + 1
    return [sys.executable, "-I", "-B", "-X", "utf8", "-c", _CHILD, root, str(status_w),
            str(memory_mb * 1024 * 1024), str(cpu), str(MAX_FILE_BYTES), str(nproc), str(int(guard))]  # fmt: skip


# ---------------------------------------------------------------- running, watching, stopping


def _execute(
    argv: Callable[[int, int], list[str]], fds: tuple[int, ...], cwd: str, env: dict[str, str],
    timeout_s: float, memory_mb: int, max_output_bytes: int, label: str, sandboxed: bool,
) -> SandboxResult:  # fmt: skip
    """Start the child, collect its output until it ends, the deadline, or too much output; explain."""
    status_r, status_w = os.pipe()
    info_r, info_w = os.pipe()
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv(status_w, info_w), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, pass_fds=(status_w, *((info_w,) if sandboxed else ()), *fds),
            start_new_session=True,
        )  # fmt: skip
    except BaseException:
        os.close(status_r)
        os.close(info_r)
        raise
    finally:
        os.close(status_w)
        os.close(info_w)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        streams = [proc.stdout.fileno(), proc.stderr.fileno(), status_r, info_r]
        bufs, timed_out, overflow = _collect(proc, streams, start + timeout_s, max_output_bytes)
        timed_out = _wait(proc, start + timeout_s, bytes(bufs[3])) or timed_out
    finally:
        os.close(status_r)
        os.close(info_r)
        proc.stdout.close()
        proc.stderr.close()
    seconds = time.monotonic() - start
    stdout, stderr, status = (bufs[i].decode("utf-8", "replace") for i in range(3))
    reports: dict[str, str] = {}
    for line in status.splitlines():
        kind, _, message = line.partition("\t")
        reports.setdefault(kind, message)
    returncode = proc.returncode
    if sandboxed and 128 < returncode < 128 + 65 and "exit" not in reports:  # bwrap's pid 1 says 128 + signal
        returncode = 128 - returncode
    error = _explain(reports, stderr, returncode, timed_out, overflow, timeout_s, memory_mb, max_output_bytes)
    return SandboxResult(stdout, stderr, returncode, error is None and returncode == 0, error, seconds, label)


def _collect(
    proc: subprocess.Popen, fds: list[int], deadline: float, max_output_bytes: int
) -> tuple[list[bytearray], bool, str | None]:
    """Read stdout, stderr, status and info until EOF, the deadline, or too much output (then stop it)."""
    limits = [max_output_bytes, max_output_bytes, _STATUS_LIMIT, _STATUS_LIMIT]
    bufs = [bytearray() for _ in fds]
    timed_out, overflow = False, None
    with selectors.DefaultSelector() as sel:
        for i, fd in enumerate(fds):
            sel.register(fd, selectors.EVENT_READ, i)
        while sel.get_map() and overflow is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in sel.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                i = key.data
                room = limits[i] - len(bufs[i])
                bufs[i] += chunk[: max(room, 0)]
                if len(chunk) > room and i < 2:
                    overflow = "stdout" if i == 0 else "stderr"
                    break
    if timed_out or overflow:
        _stop(proc, bytes(bufs[3]))
    return bufs, timed_out, overflow


def _wait(proc: subprocess.Popen, deadline: float, info: bytes) -> bool:
    """Wait for the child until the deadline (then stop it), kill what is left of its group, reap it,
    and make sure the sandbox's pid 1 is gone (bwrap reaps it before it exits: this is a backstop).

    The group is killed while the child is still an unreaped zombie, so its pid (and the group
    id) cannot have been reused by an unrelated process. Returns True on timeout.
    """
    timed_out = False
    while _alive(proc):
        if time.monotonic() >= deadline:
            timed_out = True
            _stop(proc, info)
            break
        time.sleep(0.005)
    _kill_group(proc)
    proc.wait()
    init = _init_pid(info)
    give_up = time.monotonic() + 2.0
    while init is not None and _running(init) and time.monotonic() < give_up:
        time.sleep(0.002)
    return timed_out


def _stop(proc: subprocess.Popen, info: bytes) -> None:
    """Kill the sandbox's pid 1 (the kernel then kills all of its pid namespace, and bwrap exits and
    reaps it), then, after a moment, whatever is left in the child's process group."""
    pid = _sandbox_init(proc, info)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        give_up = time.monotonic() + 1.0
        while _alive(proc) and time.monotonic() < give_up:
            time.sleep(0.005)
    _kill_group(proc)


def _init_pid(info: bytes) -> int | None:
    """The host pid of the sandbox's pid 1, from bwrap's --info-fd (None without one)."""
    try:
        return int(json.JSONDecoder().raw_decode(info.decode().lstrip())[0]["child-pid"])
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def _sandbox_init(proc: subprocess.Popen, info: bytes) -> int | None:
    """The sandbox's outermost pid 1 while it is still our bwrap's child (so the pid is not someone else's)."""
    pid = _init_pid(info)
    if pid is None or not _running(pid) or _ppid(pid) != proc.pid or not _alive(proc):
        return None
    return pid


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie (a zombie pid 1 has no processes left in its namespace)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _alive(proc: subprocess.Popen) -> bool:
    """Whether the child still runs; never reaps it (see _wait)."""
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _explain(
    reports: dict[str, str], stderr: str, returncode: int, timed_out: bool, overflow: str | None,
    timeout_s: float, memory_mb: int, max_output_bytes: int,
) -> str | None:  # fmt: skip
    """One sentence for the sample's record; the first thing that went wrong wins."""
    if "violation" in reports:
        return reports["violation"]
    if timed_out:
        return f"timed out after {timeout_s:.1f} s"
    if overflow:
        return f"output truncated at {max_output_bytes} bytes" + (" (stderr)" if overflow == "stderr" else "")
    if "started" not in reports:
        return "sandbox failed to start: " + ((stderr.strip().splitlines() or ["no output"])[-1])[:300]
    if "memory" in reports:
        return f"memory limit {memory_mb} MB exceeded"
    if "exception" in reports:
        return reports["exception"]
    if returncode < 0:
        sig = -returncode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGXCPU:
            return f"CPU time limit exceeded (timed out after {timeout_s:.1f} s)"
        return f"killed by signal {name}"
    if returncode != 0:
        return f"exited with status {returncode}"
    return None

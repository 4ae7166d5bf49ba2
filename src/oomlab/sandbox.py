"""Run model-written Python in a guarded subprocess (program-of-thought, tool use).

`run_python(code)` starts a fresh `python -I -B` in a new, empty temp directory and
returns what it printed, or a clear error when the program had to be stopped. It never
raises for anything the program does, so a sweep records the error on the sample and
goes on to the next one.

Linux only (POSIX rlimits, /proc). What it enforces:
- time: a wall-clock deadline, after which the whole process group is killed, and
  RLIMIT_CPU as a backstop;
- memory: RLIMIT_AS (address space), so `bytearray(10 * 1024**3)` fails at once with
  MemoryError instead of swapping the machine;
- output: stdout and stderr are each read up to `max_output_bytes`, then the program is
  killed; files it writes are capped at 16 MiB each (RLIMIT_FSIZE);
- no network: a `sys.addaudithook` guard blocks every `socket.*` event, and where the
  `unshare` tool can create a network namespace (root, or unprivileged user namespaces
  enabled) the program also runs in an empty one, so the kernel blocks it too;
- writes only in its temp dir: the guard blocks `open` for writing, and remove, rename,
  mkdir, chmod, chown, utime, truncate, rmtree, ... on any path outside it; symlink and
  hard-link creation are blocked (they would let a path inside point outside);
- no processes and no native code: `subprocess`, `os.system`, `os.exec*`, `os.fork`,
  `os.posix_spawn`, signals to other processes, and `ctypes` loading libraries, looking
  up symbols, calling foreign functions or poking at raw memory are blocked, as is
  importing modules that write files natively (sqlite3, dbm, readline, POSIX shared memory)
  or start subinterpreters; `resource.setrlimit` is blocked, so limits stay put even for root.

The limits are set by the child itself, first thing, rather than in `preexec_fn`: the
parent may run threads (llama.cpp, Ray), and `preexec_fn` is unsafe in a threaded parent.
Nothing of the program runs before they are in place, a process cannot raise its hard
limits without privilege, and the guard blocks `resource.setrlimit` for a root child.
Audit hooks cannot be removed once added (PEP 578), and the guard keeps everything it
uses in its own closure, so monkeypatching `os`, `builtins` or `str` does not change it.

What it does NOT protect against (it is a guard against the mistakes and excesses of
model-written code, not a security boundary against code written to attack it; run
oomlab inside a container or VM - gVisor, nsjail, bubblewrap - for that):
- reading: any file the user running oomlab can read can be read and printed, and so
  ends up in the sample's record; the environment, though, is replaced by a minimal one;
- the program runs with the caller's uid - as root, the guard alone stops writes outside;
- C extension modules do their own I/O without audit events: the known stdlib ones are
  blocked at import, but a third-party extension installed in the environment is reachable
  (`import ctypes` itself is allowed because numpy needs it; its dangerous calls are not);
- `os.mkfifo` and `os.mknod` raise no audit event in Python 3.11;
- a program that attacks the guard's own inputs, e.g. a path-like object whose
  `__fspath__` returns a different path on each call, or an interpreter bug;
- without a network namespace, only the audit hook stands between the program and the
  network;
- disk use inside the temp dir is bounded per file and by time, not in total; the
  temp dir is deleted afterwards.
"""

from __future__ import annotations

import functools
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from oomlab.errors import ConfigError

MAX_FILE_BYTES = 16 * 1024 * 1024  # RLIMIT_FSIZE: the largest file the program may write
_STATUS_LIMIT = 64 * 1024

# Runs in the child before the program: limits, then the guard, then the program.
# argv: temp dir, status fd, memory bytes, cpu seconds, file-size bytes.
# The child reports to the parent on the status fd, one "kind<TAB>message" line per event:
# "violation" (a guard refused something), "memory" (MemoryError), "exception".
_CHILD = r'''
import os, sys, resource, signal, stat, traceback, types

def _limit(kind, soft, hard=None):
    hard = soft if hard is None else hard
    old_hard = resource.getrlimit(kind)[1]
    if old_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, old_hard), min(hard, old_hard)
    resource.setrlimit(kind, (soft, hard))

def _make_guard(root, status_fd):
    # Everything the hook uses is bound here, once: later changes to os, builtins or
    # module globals by the program do not reach it.
    _isinstance, _str, _bytes, _int, _tuple = isinstance, str, bytes, int, tuple
    _concat, _startswith, _split, _join, _encode = str.__add__, str.startswith, str.split, str.join, str.encode
    _decode, _fspath, _getcwd, _readlink = bytes.decode, os.fspath, os.getcwd, os.readlink
    _stat, _isdir, _write, _pid = os.stat, stat.S_ISDIR, os.write, os.getpid()
    _Error = type("SandboxViolation", (PermissionError,), {})
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    root_slash = _concat(root, "/")
    writable_devices = ("/dev/null", "/dev/stdout", "/dev/stderr")
    NET = "network access blocked"
    WRITE = "write outside the sandbox's temp dir blocked"
    PROC = "process creation blocked"
    NATIVE = "native code access blocked"
    blocked_imports = {
        "_posixsubprocess": PROC, "_sqlite3": "sqlite3 blocked (it writes files unguarded)",
        "sqlite3": "sqlite3 blocked (it writes files unguarded)", "_dbm": "dbm blocked (it writes files unguarded)",
        "_gdbm": "dbm blocked (it writes files unguarded)", "readline": "readline blocked (it writes files unguarded)",
        "_posixshmem": "shared memory blocked", "_xxsubinterpreters": "subinterpreters blocked",
        "_xxinterpchannels": "subinterpreters blocked", "_cffi_backend": NATIVE, "cffi": NATIVE,
        "_testcapi": NATIVE, "_testinternalcapi": NATIVE,
    }
    process_events = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                      "os.fork", "os.forkpty", "pty.spawn", "os.startfile")
    native_events = ("ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.cdata", "ctypes.cdata/buffer",
                     "ctypes.call_function", "ctypes.string_at", "ctypes.wstring_at", "ctypes.set_exception")
    # finding the guard's objects (to tamper with them), or a new interpreter without the guard
    introspection_events = ("gc.get_objects", "gc.get_referrers", "gc.get_referents",
                            "cpython.PyInterpreterState_New")
    # event -> (positions of path arguments, position of their dir_fd or None)
    path_events = {
        "os.remove": ((0,), 1), "os.rmdir": ((0,), 1), "os.mkdir": ((0,), 2), "os.rename": ((0, 1), 2),
        "os.chmod": ((0,), 2), "os.chown": ((0,), 3), "os.utime": ((0,), 3), "os.truncate": ((0,), None),
        "os.chflags": ((0,), None), "os.lchflags": ((0,), None), "os.setxattr": ((0,), None),
        "os.removexattr": ((0,), None), "shutil.rmtree": ((0,), 1), "shutil.chown": ((0,), None),
    }

    def deny(reason, detail):
        message = _concat(_concat(reason, " ("), _concat(detail, ")"))
        try:
            _write(status_fd, _encode(_concat(_concat("violation\t", message), "\n"), "utf-8", "replace"))
        finally:
            raise _Error(_concat("sandbox: ", message))

    def text(path):
        if not _isinstance(path, (_str, _bytes)):
            path = _fspath(path)
        if _isinstance(path, _bytes):
            return _decode(path, "utf-8", "surrogateescape")
        return _concat("", path)  # an exact str, whatever subclass came in

    def fd_path(fd):
        try:
            return _readlink(_concat("/proc/self/fd/", _int.__repr__(fd)))
        except OSError:
            return ""

    def absolute(path, dir_fd=None):
        if _isinstance(path, _int):
            return fd_path(path)
        path = text(path)
        if not _startswith(path, "/"):
            base = _getcwd() if dir_fd is None or dir_fd == -1 else fd_path(dir_fd)
            path = _concat(_concat(base, "/"), path)
        parts = []
        for part in _split(path, "/"):
            if part == "" or part == ".":
                continue
            if part == "..":
                if parts:
                    parts.pop()
            else:
                parts.append(part)
        return _concat("/", _join("/", parts))

    def inside(path):
        return path == root or _startswith(path, root_slash)

    def check_write(event, path, dir_fd=None):
        where = absolute(path, dir_fd)
        if not inside(where) and where not in writable_devices and _startswith(where, "/"):
            deny(WRITE, _concat(_concat(event, " "), where))

    def hook(event, args):
        if _startswith(event, "socket.") or event == "urllib.Request":
            deny(NET, event)
        elif event == "open":
            path, mode, flags = args
            if _isinstance(path, _int):
                return  # an fd already opened; its opening was checked
            if (_isinstance(mode, _str) and ("w" in mode or "a" in mode or "x" in mode or "+" in mode)) or (
                _isinstance(flags, _int) and flags & write_flags
            ):
                check_write(event, path)
            elif mode is None:  # os.open: a directory fd outside would let dir_fd= calls escape
                where = absolute(path)
                if not inside(where):
                    try:
                        is_dir = _isdir(_stat(where).st_mode)
                    except OSError:
                        is_dir = False
                    if is_dir:
                        deny(WRITE, _concat("os.open of directory ", where))
        elif event in path_events:
            positions, dir_fd_at = path_events[event]
            dir_fd = args[dir_fd_at] if dir_fd_at is not None and dir_fd_at < len(args) else None
            for i in positions:
                check_write(event, args[i], dir_fd)
        elif event in ("os.symlink", "os.link"):
            deny(WRITE, _concat(event, " (links could point outside)"))
        elif event in process_events:
            deny(PROC, event)
        elif event == "import":
            name = args[0]
            top = _split(name, ".")[0] if _isinstance(name, _str) else ""
            reason = blocked_imports.get(name) or blocked_imports.get(top)
            if reason:
                deny(reason, _concat("import ", name))
        elif event == "ctypes.dlopen":
            if args[0] is not None:
                deny(NATIVE, event)
        elif event in native_events:
            deny(NATIVE, event)
        elif event in introspection_events:
            deny("interpreter introspection blocked", event)
        elif event in ("resource.setrlimit", "resource.prlimit"):
            deny("changing resource limits blocked", event)
        elif event in ("os.kill", "os.killpg", "signal.pthread_kill"):
            if not (event == "os.kill" and args[0] == _pid):
                deny("signalling other processes blocked", event)

    return hook

def _report(status_fd, kind, message):
    try:
        os.write(status_fd, ("%s\t%s\n" % (kind, message.replace("\n", " "))).encode("utf-8", "replace"))
    except OSError:
        pass

def _print_traceback(e):
    # the program's frames only: the prelude and the guard are not the program's business
    tb = traceback.TracebackException.from_exception(e)
    tb.stack = traceback.StackSummary.from_list([f for f in tb.stack if f.filename != "<string>"])
    sys.stderr.write("".join(tb.format()))

def _main():
    root, status_fd = sys.argv[1], int(sys.argv[2])
    memory, cpu, fsize = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    _limit(resource.RLIMIT_AS, memory)
    _limit(resource.RLIMIT_CPU, cpu, cpu + 1)  # SIGXCPU at the soft limit, SIGKILL a second later
    _limit(resource.RLIMIT_FSIZE, fsize)
    _limit(resource.RLIMIT_CORE, 0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails with OSError
    os.chdir(root)
    path = os.path.join(root, "main.py")
    with open(path, "rb") as f:
        source = f.read()
    sys.dont_write_bytecode = True
    sys.addaudithook(_make_guard(root, status_fd))
    module = types.ModuleType("__main__")
    module.__file__ = path
    sys.modules["__main__"] = module
    try:
        exec(compile(source, "main.py", "exec"), module.__dict__)
    except SystemExit:
        raise
    except MemoryError:
        _report(status_fd, "memory", "")
        sys.stderr.write("MemoryError\n")
        sys.exit(1)
    except BaseException as e:
        message = traceback.format_exception_only(e)[-1].strip()
        if isinstance(e, SyntaxError) and e.lineno:
            message += " (line %d)" % e.lineno
        _report(status_fd, "exception", message[:500])
        _print_traceback(e)
        sys.exit(1)
    finally:
        try:
            sys.stdout.flush()
        except Exception:
            pass

_main()
'''


@dataclass(frozen=True)
class SandboxResult:
    """What a program did: its output, exit status, and why it failed (None when it did not)."""

    stdout: str
    stderr: str
    returncode: int
    ok: bool  # exited 0 and nothing was blocked or cut off
    error: str | None  # a sentence for people: "timed out after 5.0 s", "network access blocked (...)"
    seconds: float


def run_python(
    code: str, *, timeout_s: float = 5.0, memory_mb: int = 256, max_output_bytes: int = 64_000
) -> SandboxResult:
    """Run `code` in a guarded child Python; never raises for anything the code does."""
    if not timeout_s > 0:
        raise ConfigError(f"sandbox timeout must be positive, got {timeout_s}")
    if memory_mb < 32:
        raise ConfigError(f"sandbox memory limit must be at least 32 MB, got {memory_mb}")
    if max_output_bytes < 0:
        raise ConfigError(f"sandbox output limit must be >= 0, got {max_output_bytes}")
    root = os.path.realpath(tempfile.mkdtemp(prefix="oomlab-sandbox-"))
    try:
        with open(os.path.join(root, "main.py"), "w", encoding="utf-8") as f:
            f.write(code)
        return _run_child(root, timeout_s, memory_mb, max_output_bytes)
    finally:
        _remove_tree(root)


def _run_child(root: str, timeout_s: float, memory_mb: int, max_output_bytes: int) -> SandboxResult:
    status_r, status_w = os.pipe()
    argv = [
        *_network_namespace_prefix(),
        sys.executable, "-I", "-B", "-X", "utf8", "-c", _CHILD,
        root, str(status_w), str(memory_mb * 1024 * 1024), str(math.ceil(timeout_s) + 1), str(MAX_FILE_BYTES),
    ]  # fmt: skip
    env = {"HOME": root, "TMPDIR": root, "LC_ALL": "C.UTF-8", "PATH": os.defpath}
    env.update({k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, pass_fds=(status_w,), start_new_session=True,
        )  # fmt: skip
    finally:
        os.close(status_w)
    try:
        streams, timed_out, overflow = _collect(proc, status_r, start + timeout_s, max_output_bytes)
        timed_out = _wait_and_kill_group(proc, start + timeout_s) or timed_out
    finally:
        os.close(status_r)
        for pipe in (proc.stdout, proc.stderr):
            if pipe:
                pipe.close()
    seconds = time.monotonic() - start
    stdout, stderr, status = (streams[i].decode("utf-8", "replace") for i in range(3))
    error = _explain(status, proc.returncode, timed_out, overflow, timeout_s, memory_mb, max_output_bytes)
    return SandboxResult(stdout, stderr, proc.returncode, error is None and proc.returncode == 0, error, seconds)


def _collect(
    proc: subprocess.Popen, status_r: int, deadline: float, max_output_bytes: int
) -> tuple[list[bytearray], bool, str | None]:
    """Read stdout, stderr and the status pipe until EOF, the deadline, or too much output."""
    assert proc.stdout is not None and proc.stderr is not None
    fds = [proc.stdout.fileno(), proc.stderr.fileno(), status_r]
    limits = [max_output_bytes, max_output_bytes, _STATUS_LIMIT]
    bufs = [bytearray(), bytearray(), bytearray()]
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
        _kill_group(proc)
    return bufs, timed_out, overflow


def _wait_and_kill_group(proc: subprocess.Popen, deadline: float) -> bool:
    """Wait for the child until the deadline, then kill anything left in its process group.

    The group is killed while the child is still an unreaped zombie, so its pid (and the
    group id) cannot have been reused by an unrelated process. Returns True on timeout.
    """
    timed_out = False
    while True:
        try:
            exited = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            break
        if exited is not None:
            break
        if time.monotonic() >= deadline:
            timed_out = True
            break
        time.sleep(0.005)
    _kill_group(proc)
    proc.wait()
    return timed_out


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _explain(
    status: str, returncode: int, timed_out: bool, overflow: str | None,
    timeout_s: float, memory_mb: int, max_output_bytes: int,
) -> str | None:  # fmt: skip
    """One sentence for the sample's record; the first thing that went wrong wins."""
    reports: dict[str, str] = {}
    for line in status.splitlines():
        kind, _, message = line.partition("\t")
        reports.setdefault(kind, message)
    if "violation" in reports:
        return reports["violation"]
    if timed_out:
        return f"timed out after {timeout_s:.1f} s"
    if overflow:
        return f"output truncated at {max_output_bytes} bytes" + (" (stderr)" if overflow == "stderr" else "")
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


@functools.cache
def _network_namespace_prefix() -> tuple[str, ...]:
    """`unshare` arguments that put the child in an empty network namespace, or () if none work."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    candidates = [(unshare, "--net", "--")] if os.geteuid() == 0 else []
    candidates.append((unshare, "--user", "--map-root-user", "--net", "--"))
    for prefix in candidates:
        try:
            probe = subprocess.run(
                [*prefix, sys.executable, "-I", "-c", "print('ok')"], capture_output=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0 and probe.stdout.strip() == b"ok":
            return prefix
    return ()


def network_namespace_available() -> bool:
    """Whether sandboxed programs also run in an empty network namespace (kernel-level no network)."""
    return bool(_network_namespace_prefix())


def _remove_tree(path: str) -> None:
    """Delete the temp dir even if the program removed its own permissions on parts of it."""

    def make_writable_and_retry(func, p, _exc):  # noqa: ANN001
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=make_writable_and_retry)

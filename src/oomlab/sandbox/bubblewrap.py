"""The bubblewrap command line that puts a program behind the OS boundary.

The program gets new user, pid, network, IPC, UTS and cgroup namespaces (`--unshare-all`),
no capabilities, no further user namespaces, and a root that holds only:
- read-only: /usr, the /bin, /lib* links, a few /etc files the dynamic loader and `time`
  read, and the Python installation the interpreter comes from (sys.prefix, sys.base_prefix);
- /proc of its own pid namespace, where the program itself is pid 1 (`--as-pid-1`: no bwrap
  process inside to tamper with; when it exits, the kernel kills whatever it started) and the
  parent's processes are not there to read or signal;
- a minimal read-only /dev (null, zero, random, urandom, tty, full);
- /tmp: a size-limited tmpfs, the only writable place, gone with the sandbox (nothing of it
  is ever on the host's disk), holding the working dir with main.py copied in from a memfd.
The environment is empty but for PATH, HOME, TMPDIR, locale and thread-count variables.

Run as root, the kernel does not enforce RLIMIT_NPROC (it exempts uid 0 outright), so the
program must not run as host root: a first, privileged bwrap builds the same read-only view
(the interpreter may live under /root, which uid 65534 cannot enter), `setpriv` drops to
uid/gid 65534 with no groups, and the second bwrap builds the sandbox from that view.

Both stages run with --die-with-parent, and the first has a pid namespace of its own: when
oomlab dies, SIGKILL included, the kernel kills everything the sandbox holds (see command()).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from oomlab.errors import ConfigError

BWRAP = "bwrap"  # a name looked up on PATH, or a path (tests point it at nothing)
NOBODY = 65534
INSTALL_HINT = "install it with `apt-get install bubblewrap` (Debian/Ubuntu) or `dnf install bubblewrap` (Fedora)"
_SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache",
                 "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives")  # fmt: skip


@dataclass(frozen=True)
class Bubblewrap:
    """An installed bwrap and how to run it here."""

    path: str
    version: str  # "0.8.0"
    setpriv: str | None = None  # set when we are root: drop to NOBODY through this (see module docstring)

    def label(self) -> str:
        note = " (as root: the process limit is not enforced)" if os.geteuid() == 0 and not self.setpriv else ""
        return f"bubblewrap {self.version}{note}"


def find() -> Bubblewrap:
    """The bwrap on PATH and its version; ConfigError (one line, how to install it) when there is none."""
    path = BWRAP if os.sep in BWRAP else shutil.which(BWRAP)
    if not path or not os.access(path, os.X_OK):
        raise ConfigError(
            "running model-written code needs bubblewrap (bwrap), which is not installed: "
            f"{INSTALL_HINT}; or choose tool:sandbox=unsafe-guard to run it UNSAFELY, without OS isolation"
        )
    return _version(os.path.realpath(path))


@functools.cache
def _version(path: str) -> Bubblewrap:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, env={}).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ConfigError(f"bubblewrap at {path} does not run ({e}); {INSTALL_HINT}") from None
    return Bubblewrap(path, out.split()[-1] if out.split() else "unknown")


def variants(bw: Bubblewrap) -> list[Bubblewrap]:
    """Ways to run it, best first: as root, the two-stage drop to nobody where setpriv exists."""
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")
    nested = [Bubblewrap(bw.path, bw.version, setpriv)] if os.geteuid() == 0 and setpriv else []
    return [*nested, bw]


def readable_paths() -> list[str]:
    """What the sandbox may read, each path once (nothing under another), links kept as links."""
    executable = os.path.realpath(sys.executable)
    candidates = [*_SYSTEM_PATHS, sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                  os.path.dirname(executable)]  # fmt: skip
    paths: list[str] = []
    for path in map(os.path.abspath, candidates):
        if os.path.islink(path):
            candidates.append(os.path.realpath(path))  # the target is mounted too (iterating a growing list)
        if os.path.lexists(path) and not any(path == p or path.startswith(p.rstrip("/") + "/") for p in paths):
            paths = [p for p in paths if not p.startswith(path + "/")] + [path]
    return paths


def _view(paths: list[str]) -> list[str]:
    """Arguments that mount `paths` read-only, parents created world-traversable (bwrap makes them 0700)."""
    args, made = [], set()
    for path in paths:
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/" + "/".join(parts[:i])
            if parent not in made and not os.path.islink(parent):
                made.add(parent)
                args += ["--perms", "0755", "--dir", parent]
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        else:
            args += ["--ro-bind", path, path]
    return args


def command(bw: Bubblewrap, *, workdir: str, code_fd: int, info_fd: int, tmp_bytes: int,
            env: dict[str, str], program: list[str]) -> list[str]:  # fmt: skip
    """The full argv: [first stage ... setpriv ...] bwrap ... -- program.

    `info_fd` gets the first bwrap's JSON with "child-pid": the host pid of its child, which is
    pid 1 of the outermost new pid namespace: killing it kills everything the program started.
    """
    view = _view(readable_paths())
    info = ["--info-fd", str(info_fd)]
    inner = [
        bw.path, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
        "--as-pid-1", "--cap-drop", "ALL", "--uid", str(NOBODY), "--gid", str(NOBODY), "--hostname", "sandbox",
        "--clearenv", *(a for k, v in env.items() for a in ("--setenv", k, v)),
        # the tmpfs first: a Python installation under /tmp (a venv there) is mounted on top of it, not hidden
        "--size", str(tmp_bytes), "--tmpfs", "/tmp",
        *view, "--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev",
        "--dir", workdir, "--file", str(code_fd), f"{workdir}/main.py",
        "--remount-ro", "/", *([] if bw.setpriv else info), "--chdir", workdir, "--", *program,
    ]  # fmt: skip
    if not bw.setpriv:
        return inner
    # The first stage has a pid namespace of its own, with `sh` (root) as its pid 1: a parent-death
    # signal from a root process without capabilities (bwrap drops them) to a uid-65534 one is
    # refused by the kernel, but when this pid 1 dies (with its bwrap, with us) the kernel kills
    # the whole namespace, the second stage and the program included, and reaps them (bwrap's own
    # pid 1 would leave itself a zombie for the host's init). /proc of the host is in this view
    # only because the kernel lets the second stage mount a new procfs only where a full one is
    # visible; the program never sees it. The second stage builds its root on a tmpfs at /tmp.
    outer = [bw.path, "--die-with-parent", "--unshare-pid", "--as-pid-1", *info, *view,
             "--bind", "/proc", "/proc", "--dev", "/dev", "--dir", "/tmp", "--", "/bin/sh", "-c", '"$@"; exit $?', "sh",
             bw.setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]  # fmt: skip
    return outer + inner

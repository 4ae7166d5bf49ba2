"""Hostile programs against the real bubblewrap sandbox, with its audit guard switched off.

Each program is written to escape, and each test asserts containment, not an error message:
afterwards the parent and a host process the program aimed at are alive, a watched host dir
(holding a secret) is unchanged, no temp dir is left on the host, no process carrying the test's
marker runs anywhere, and neither the secret file nor the secret in the parent's environment
appears in what the program printed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from oomlab.sandbox import MAX_PROCESSES, MAX_TMP_BYTES, SandboxResult, run_python

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")


@dataclass
class Host:
    """What the program aims at, and what the test watches."""

    marker: str  # in the argv of processes the program starts
    comm: str  # the program's (and its forks') process name, 15 chars at most
    secret: str  # in the parent's environment and in a host file
    watched: Path  # a host dir with the secret file in it
    victim: subprocess.Popen  # a host process the program tries to kill

    def run(self, body: str, **limits) -> SandboxResult:
        """Run `body` after a line that names the process, so the test can find what it leaves."""
        prelude = f"import os\ntry:\n    open('/proc/self/comm', 'w').write({self.comm!r})\nexcept OSError:\n    pass\n"
        return run_python(prelude + body, audit_guard=False, **{"timeout_s": 5.0, **limits})


def _snapshot(root: Path) -> dict[str, tuple]:
    return {str(p): (p.stat().st_mode, p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
            for p in [root, *root.rglob("*")]}  # fmt: skip


def _sandbox_dirs() -> set[str]:
    return {p.name for p in Path("/tmp").glob("oomlab-sandbox-*")}


def _lasting(names: set[str], seconds: float = 8.0) -> set[str]:
    """Those of `names` still in /tmp after a while (the unsafe guard's runs elsewhere make and remove them)."""
    give_up = time.monotonic() + seconds
    while (names := {n for n in names if os.path.exists(f"/tmp/{n}")}) and time.monotonic() < give_up:
        time.sleep(0.1)
    return names


def marked_processes(host: Host) -> list[str]:
    """Live (non-zombie) processes on the host whose name or argv carries the test's marker."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat.rpartition(")")[2].split()[0]
        if state != "Z" and (comm == host.comm or host.marker in cmdline):
            found.append(f"{entry} {comm} {cmdline[:80]}")
    return found


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _wait_until_none_marked(host: Host, seconds: float = 5.0) -> list[str]:
    give_up = time.monotonic() + seconds
    while (left := marked_processes(host)) and time.monotonic() < give_up:
        time.sleep(0.05)
    return left


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Host]:
    tag = uuid.uuid4().hex
    secret = f"s3cr3t-{tag}"
    monkeypatch.setenv("OOMLAB_HOSTILE_SECRET", secret)
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "secret.txt").write_text(secret)
    victim = subprocess.Popen(["sleep", "120"])
    h = Host(f"oomlab-hostile-{tag}", f"oh{tag[:12]}", secret, watched, victim)
    before, dirs = _snapshot(watched), _sandbox_dirs()
    try:
        yield h
        assert victim.poll() is None, "the host process the program aimed at was killed"
        assert _snapshot(watched) == before, "the watched host dir changed"
        assert _lasting(_sandbox_dirs() - dirs) == set(), "a sandbox temp dir was left on the host"
        assert _wait_until_none_marked(h) == [], "a process of the program outlived the sandbox"
    finally:
        victim.kill()
        victim.wait()


def _assert_no_secret(host: Host, result: SandboxResult) -> None:
    for text in (result.stdout, result.stderr, result.error or ""):
        assert host.secret not in text and host.secret[7:] not in text
        assert "[redacted" not in text  # the boundary held, not the redaction behind it


# ---------------------------------------------------------------- secrets: environment, memory, files


def test_parent_environment_is_unreadable(host):
    result = host.run(f"""
import glob
print(dict(os.environ))
for path in ['/proc/{os.getpid()}/environ', '/proc/{os.getppid()}/environ', '/proc/1/environ',
             *glob.glob('/proc/*/environ'), '/proc/self/environ']:
    try:
        print(path, open(path, 'rb').read())
    except OSError as e:
        print(path, 'refused', e.errno)
""")
    assert result.ok, result.stderr
    assert f"/proc/{os.getpid()}/environ refused" in result.stdout
    _assert_no_secret(host, result)


def test_parent_memory_is_unreachable(host):
    # /proc/<parent>/mem is not there to open, and a wild write only kills the program itself
    result = host.run(f"""
import ctypes, random
for pid in ({os.getpid()}, {host.victim.pid}):
    try:
        with open(f'/proc/{{pid}}/mem', 'r+b') as f:
            f.seek(0x400000); f.write(b'x' * 16); print('wrote', pid)
    except OSError as e:
        print('mem', pid, 'refused', e.errno)
print('poking', flush=True)
ctypes.memmove(random.randrange(0x1000, 0x8000), b'x' * 64, 64)  # below mmap_min_addr: never mapped
print('still here')
""")
    assert f"mem {os.getpid()} refused" in result.stdout and "wrote" not in result.stdout
    assert "poking" in result.stdout
    assert not result.ok and result.error == "killed by signal SIGSEGV", result.error


def test_host_files_are_invisible(host):
    result = host.run(f"""
targets = [{str(host.watched / 'secret.txt')!r}, {str(host.watched)!r}, '/root', '/work/main/README.md',
           '/work/main/src', '/work/shared', '/home', '/etc/passwd', '/etc/shadow', '/var', '/opt']
for path in targets:
    print(path, os.path.exists(path))
    try:
        print(open(path).read()[:100])
    except OSError as e:
        print('refused', e.errno)
print(sorted(os.listdir('/')))
for top, dirs, files in os.walk('/'):
    dirs[:] = [d for d in dirs if os.path.join(top, d) not in ('/proc', '/sys', '/dev')]
    for name in files:
        if name == 'secret.txt':
            print('found', os.path.join(top, name))
""", timeout_s=20.0)
    assert result.ok, result.stderr
    for path in (host.watched, "/work/main/README.md", "/work/main/src", "/work/shared", "/etc/shadow", "/home"):
        assert f"{path} False" in result.stdout
    assert "found" not in result.stdout
    _assert_no_secret(host, result)


# ---------------------------------------------------------------- writes outside the temp dir


def test_dir_fd_tricks_do_not_escape(host):
    result = host.run(f"""
attempts = {{
    'open-watched': lambda: os.open({str(host.watched)!r}, os.O_RDONLY),
    'open-in-root': lambda: os.open('escape.txt', os.O_WRONLY | os.O_CREAT, dir_fd=os.open('/', os.O_RDONLY)),
    'open-in-usr': lambda: os.open('escape.txt', os.O_WRONLY | os.O_CREAT, dir_fd=os.open('/usr', os.O_RDONLY)),
    'rename-to-root': lambda: os.rename('main.py', 'escape.py', dst_dir_fd=os.open('/', os.O_RDONLY)),
    'rename-to-venv': lambda: os.rename('main.py', 'escape.py', dst_dir_fd=os.open({sys.prefix!r}, os.O_RDONLY)),
    'rename-up': lambda: os.rename('main.py', '../../../escape.py'),
    'unlink-python': lambda: os.unlink('python', dir_fd=os.open({os.path.dirname(sys.executable)!r}, os.O_RDONLY)),
    'via-proc-root': lambda: open('/proc/1/root/escape.txt', 'w'),
    'symlink-out': lambda: (os.symlink({str(host.watched)!r}, 'link'), open('link/new.txt', 'w')),
}}
for name, attempt in attempts.items():
    try:
        attempt()
        print(name, 'done')
    except OSError as e:
        print(name, 'refused', e.errno)
""")
    assert result.ok, result.stderr
    for name in ("open-watched", "open-in-root", "open-in-usr", "rename-to-root", "rename-to-venv", "rename-up",
                 "unlink-python", "via-proc-root", "symlink-out"):  # fmt: skip
        assert f"{name} refused" in result.stdout, result.stdout
    assert os.path.exists(sys.executable) and not os.path.exists(os.path.join(sys.prefix, "escape.py"))
    assert not os.path.exists("/escape.txt") and not os.path.exists("/usr/escape.txt")


def test_mkfifo_and_mknod_outside_fail(host):
    result = host.run(f"""
for path in [{str(host.watched / 'fifo')!r}, '/fifo', '/usr/fifo', '/dev/fifo', '/dev/shm/fifo', '/proc/fifo']:
    try:
        os.mkfifo(path)
        print(path, 'made')
    except OSError as e:
        print(path, 'refused', e.errno)
try:
    os.mknod('/dev/sda-copy', 0o600 | 0o060000, os.makedev(8, 0))
    print('mknod made')
except OSError as e:
    print('mknod refused', e.errno)
os.mkfifo('inside')  # inside its temp dir it may
print('inside ok')
""")
    assert result.ok, result.stderr
    assert "made" not in result.stdout and "inside ok" in result.stdout
    assert not os.path.exists("/usr/fifo") and not os.path.exists("/fifo")


def test_filling_the_disk_is_bounded_and_leaves_nothing(host):
    result = host.run("""
total, chunk = 0, b'x' * (1024 * 1024)
for i in range(1000):
    try:
        with open(f'fill-{i}', 'wb') as f:
            for _ in range(8):
                f.write(chunk)
                f.flush()
                total += len(chunk)
    except OSError as e:
        print('stopped', e.errno, total)
        break
for path in ('/dev/shm/x', '/x', '/usr/x'):
    try:
        open(path, 'wb').write(chunk)
        print(path, 'written')
    except OSError as e:
        print(path, 'refused', e.errno)
""", timeout_s=10.0)
    assert result.ok, result.stderr
    written = int(result.stdout.split("stopped 28 ")[1].split()[0])  # ENOSPC
    assert MAX_TMP_BYTES // 2 <= written <= MAX_TMP_BYTES
    assert "written" not in result.stdout


# ---------------------------------------------------------------- native code


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_a_compiled_native_extension_is_contained(host, tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.3)
        port = server.getsockname()[1]
        c_source = f"""
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
int attack(void) {{
    int fd = open("{host.watched}/native.txt", O_WRONLY | O_CREAT, 0644);
    printf("open %d\\n", fd);
    printf("kill-victim %d\\n", kill({host.victim.pid}, SIGKILL));
    printf("kill-parent %d\\n", kill({os.getpid()}, SIGKILL));
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a; memset(&a, 0, sizeof a);
    a.sin_family = AF_INET; a.sin_port = htons({port}); a.sin_addr.s_addr = htonl(0x7f000001);
    printf("connect %d\\n", connect(s, (struct sockaddr *)&a, sizeof a));
    fflush(stdout);
    return 42;
}}
"""
        result = host.run(f"""
import ctypes, subprocess
open('attack.c', 'w').write({c_source!r})
built = subprocess.run(['gcc', '-shared', '-fPIC', '-o', 'attack.so', 'attack.c'], capture_output=True, text=True)
print('gcc', built.returncode, built.stderr[-300:], flush=True)
if built.returncode == 0:
    print('returned', ctypes.CDLL('./attack.so').attack(), flush=True)
""", timeout_s=30.0, memory_mb=1024)
        with pytest.raises(socket.timeout):
            server.accept()
    assert result.ok, (result.stdout, result.stderr)
    if "gcc 0" in result.stdout:  # it built and ran: every attack failed
        assert "returned 42" in result.stdout
        for line in ("open -1", "kill-victim -1", "kill-parent -1", "connect -1"):
            assert line in result.stdout, result.stdout


# ---------------------------------------------------------------- processes and signals


def test_signals_at_the_parent_and_host_processes_fail(host):
    result = host.run(f"""
import signal
for pid in ({os.getpid()}, {host.victim.pid}, {os.getppid()}):
    try:
        os.kill(pid, signal.SIGKILL)
        print('killed', pid)
    except OSError as e:
        print('kill', pid, 'refused', e.errno)
    try:
        fd = os.pidfd_open(pid)
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        print('pidfd killed', pid)
    except OSError as e:
        print('pidfd', pid, 'refused', e.errno)
os.kill(1, signal.SIGKILL)  # itself, pid 1 of its namespace: the kernel ignores it
print('after pid 1')
if os.fork() == 0:
    import time; time.sleep(60)
try:
    os.kill(-1, signal.SIGKILL)  # everything it may signal: only its own sandbox
except OSError as e:
    print('kill -1 refused', e.errno)
print('after -1')
""")
    assert result.ok, result.stderr
    assert "killed" not in result.stdout and "after -1" in result.stdout
    assert os.kill(1, 0) is None  # the host's pid 1 is alive (and so are we)


def test_a_setsid_child_does_not_outlive_the_sandbox(host):
    result = host.run(f"""
import sys
for _ in range(2):  # a daemon (double fork) and a plain setsid child
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', {host.marker!r}])
        os._exit(0)
    os.waitpid(pid, 0)
if os.fork() == 0:
    os.setsid()
    os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', {host.marker!r}])
print('parent exits', flush=True)
""")
    assert result.ok, result.stderr
    assert result.seconds < 5.0


def test_a_setsid_child_of_a_timed_out_program_is_killed(host):
    result = host.run(f"""
import sys, time
if os.fork() == 0:
    os.setsid()
    os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', {host.marker!r}])
time.sleep(60)
""", timeout_s=1.0)
    assert result.error == "timed out after 1.0 s"


def test_a_fork_storm_is_bounded(host):
    result = host.run("""
import time
children = 0
for _ in range(10_000):
    try:
        pid = os.fork()
    except OSError as e:
        print('refused', e.errno)
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    children += 1
print('children', children, flush=True)
""")
    assert result.ok, result.stderr
    assert "refused 11" in result.stdout  # EAGAIN: RLIMIT_NPROC
    assert int(result.stdout.split("children ")[1]) < MAX_PROCESSES


def test_a_recursive_fork_bomb_is_bounded_and_stopped(host):
    result = host.run("""
import time
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.05)
""", timeout_s=1.5)
    assert result.error == "timed out after 1.5 s"
    assert result.seconds < 1.5 + 5.0


# ---------------------------------------------------------------- network


def test_no_connection_reaches_the_host():
    abstract = f"\0oomlab-hostile-{uuid.uuid4().hex}"
    with socket.socket() as tcp, socket.socket(socket.AF_UNIX) as unix:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(1)
        tcp.settimeout(0.3)
        unix.bind(abstract)
        unix.listen(1)
        unix.settimeout(0.3)
        port = tcp.getsockname()[1]
        result = run_python(f"""
import socket
for name, family, address in [('tcp', socket.AF_INET, ('127.0.0.1', {port})), ('tcp6', socket.AF_INET6, ('::1', {port})),
                              ('unix', socket.AF_UNIX, {abstract!r}), ('dns', socket.AF_INET, ('8.8.8.8', 53))]:
    try:
        with socket.socket(family) as s:
            s.settimeout(1)
            s.connect(address)
        print(name, 'connected')
    except OSError as e:
        print(name, 'refused', e.errno)
""", audit_guard=False)
        for server in (tcp, unix):
            with pytest.raises(socket.timeout):
                server.accept()
    assert result.ok, result.stderr
    assert "connected" not in result.stdout
    for name in ("tcp", "tcp6", "unix", "dns"):
        assert f"{name} refused" in result.stdout


# ---------------------------------------------------------------- the parent dies


def test_sigkilled_parent_leaves_nothing_behind(host, tmp_path):
    program = (f"open('/proc/self/comm', 'w').write({host.comm!r})\n"
               "import time\nprint('up', flush=True)\ntime.sleep(60)\n")  # fmt: skip
    helper = subprocess.Popen(
        [sys.executable, "-c", f"from oomlab.sandbox import run_python; run_python({program!r}, timeout_s=60, audit_guard=False)"],
        start_new_session=True,
    )
    try:
        give_up = time.monotonic() + 20.0
        while not marked_processes(host) and time.monotonic() < give_up:
            assert helper.poll() is None, "the helper died by itself"
            time.sleep(0.05)
        assert marked_processes(host), "the sandboxed program never started"
        started = _descendants(helper.pid)  # the bwraps, setpriv, the sandbox's pid 1, the program
        assert len(started) >= 3, started
        helper.send_signal(signal.SIGKILL)
        helper.wait()
        assert _wait_until_none_marked(host, 5.0) == []
        give_up = time.monotonic() + 5.0
        while (alive := [pid for pid in started if _running(pid)]) and time.monotonic() < give_up:
            time.sleep(0.05)
        assert alive == [], "processes the killed parent started live on"
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait()

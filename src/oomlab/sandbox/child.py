"""The prelude of every sandboxed program: limits, then (optionally) the audit guard, then the program.

Run as `python -I -B -c <this file's text> ROOT STATUS_FD MEMORY CPU FSIZE NPROC GUARD`, never imported.
It reports to the parent on STATUS_FD, one "kind<TAB>message" line per event: "started", "violation"
(the guard refused something), "memory" (MemoryError), "exception", "exit" (the exit status).
Inside bubblewrap the guard is defence in depth (and gives clear messages); on its own, with the
unsafe-guard option, it is all there is.
"""

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
    memory, cpu, fsize, nproc, guard = (int(a) for a in sys.argv[3:8])
    _report(status_fd, "started", "")
    _limit(resource.RLIMIT_AS, memory)
    _limit(resource.RLIMIT_CPU, cpu, cpu + 1)  # SIGXCPU at the soft limit, SIGKILL a second later
    _limit(resource.RLIMIT_FSIZE, fsize)
    _limit(resource.RLIMIT_CORE, 0)
    if nproc:
        _limit(resource.RLIMIT_NPROC, nproc)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails with OSError
    os.chdir(root)
    path = os.path.join(root, "main.py")
    with open(path, "rb") as f:
        source = f.read()
    sys.dont_write_bytecode = True
    if guard:
        sys.addaudithook(_make_guard(root, status_fd))
    module = types.ModuleType("__main__")
    module.__file__ = path
    sys.modules["__main__"] = module
    try:
        exec(compile(source, "main.py", "exec"), module.__dict__)
    except SystemExit as e:
        code = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
        _report(status_fd, "exit", str(code))
        raise
    except MemoryError:
        _report(status_fd, "memory", "")
        sys.stderr.write("MemoryError\n")
        _exit(status_fd, 1)
    except BaseException as e:
        message = traceback.format_exception_only(e)[-1].strip()
        if isinstance(e, SyntaxError) and e.lineno:
            message += " (line %d)" % e.lineno
        _report(status_fd, "exception", message[:500])
        _print_traceback(e)
        _exit(status_fd, 1)
    finally:
        try:
            sys.stdout.flush()
        except Exception:
            pass
    _report(status_fd, "exit", "0")

def _exit(status_fd, code):
    _report(status_fd, "exit", str(code))
    sys.exit(code)

if __name__ == "__main__":
    _main()

"""Symbolic grading of MATH-style answers with Math-Verify, bounded in time from any thread.

Math-Verify (huggingface/Math-Verify) parses LaTeX into SymPy (through latex2sympy2_extended)
and compares two answers the way a mathematician would: fractions, radicals, intervals, tuples,
sets, degrees, percentages, `\\text{}` answers and plain-text numbers. Its own time limits
(`parsing_timeout`, `timeout_seconds`) use `signal.alarm`, which only works on the main thread
of the main interpreter: called from a worker thread or an event loop's executor it raises.

So grading never happens in the caller's process. A small pool of worker processes
(`python -m oomlab.tasks.math_grading`, each speaking JSON lines on its stdin/stdout) does the
parsing; inside a worker Math-Verify runs on that process's main thread, where its own alarms
work, and the caller waits on the pipe for each verdict with a deadline of its own. A worker
that misses the deadline (an expression SymPy will not finish, a C extension that ignores the
alarm) is killed and replaced, and the answer it was grading is rejected: a pathological answer
costs its deadline, it never hangs a sweep. The caller's side is plain blocking I/O on a worker
it has checked out for itself, so `grade` is safe from any number of threads, and `agrade` from
async code.

A worker imports SymPy and Math-Verify once (about a second) and then grades a pair in a few
milliseconds; results are cached by (answer, reference), so a draw of N samples of one problem
parses its reference once and a repeated answer is free. Two plain integers (`-?[0-9]+` on both
sides, 311 of MATH-500's 500 answers) are compared as integers in the caller, with no worker:
that is exactly what Math-Verify concludes for them, without the LaTeX parse.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from oomlab.errors import ConfigError

INSTALL_HINT = "the math task grades answers with Math-Verify: pip install 'oomlab[math]'"
DEFAULT_TIMEOUT_S = 10.0  # per answer; Math-Verify's own per-operation limit inside a worker is 5 s
WORKER_START_TIMEOUT_S = 60.0  # importing SymPy on a loaded 2-core machine can take a while
CACHE_SIZE = 65_536
PLAIN_INTEGER = re.compile(r"-?[0-9]+")


def math_verify_available() -> bool:
    """True when Math-Verify, its LaTeX parser and the ANTLR runtime are installed (found, not imported:
    importing them loads SymPy, which only the workers need)."""
    return all(importlib.util.find_spec(m) is not None for m in ("math_verify", "latex2sympy2_extended", "antlr4"))


def require_math_verify() -> None:
    """Fail before any compute is spent when the grader cannot run; the message says what to install."""
    if not math_verify_available():
        raise ConfigError(INSTALL_HINT)


@dataclass
class GraderStats:
    """What a grader has done: graded pairs (cache hits excluded), timeouts, worker (re)starts."""

    graded: int = 0
    integers: int = 0  # of `graded`: both sides plain integers, compared without a worker
    cached: int = 0
    timeouts: int = 0  # a worker missed a deadline (or died) and was replaced; that answer was rejected
    errors: int = 0  # Math-Verify raised on a pair (it counts as not equivalent)
    workers_started: int = 0


class GradingWorker:
    """One worker process and the pipe to it; used by one caller at a time (the pool's lock)."""

    def __init__(self, start_timeout: float = WORKER_START_TIMEOUT_S):
        # the worker imports this very package, wherever the caller found it
        here = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH")
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=here if not path else f"{here}{os.pathsep}{path}")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "oomlab.tasks.math_grading"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        self._buf = b""
        ready = self._read_line(time.monotonic() + start_timeout)
        if ready is None or json.loads(ready).get("ready") is not True:
            self.kill()
            raise ConfigError(f"the Math-Verify grading worker did not start ({INSTALL_HINT})")

    def _read_line(self, deadline: float) -> bytes | None:
        """One line from the worker, or None when the deadline passes or the worker dies first."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:  # the worker exited
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def grade(self, pairs: Sequence[tuple[str, str]], timeout: float) -> list[bool | None]:
        """Verdicts for (answer, reference) pairs, each within `timeout` s of the one before.

        None for a pair Math-Verify failed on. The list stops short when the worker missed a deadline
        (or died): the pair it was on is then the next one, and the worker must be replaced.
        """
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps([list(p) for p in pairs]).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return []
        verdicts: list[bool | None] = []
        for _ in pairs:
            line = self._read_line(time.monotonic() + timeout)
            if line is None:
                break
            value = json.loads(line)
            verdicts.append(None if value is None else bool(value))
        return verdicts

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu_seconds(self) -> float:
        """CPU time the worker has used so far (Linux /proc; 0 where it cannot be read)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def kill(self) -> None:
        """Stop the worker at once (a hung SymPy call does not get to finish)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


class MathGrader:
    """Math-Verify equivalence of an answer and a reference, from any thread, never hanging.

    `workers` processes are started on first use (default: 2, or 1 on a single core).
    """

    def __init__(self, workers: int | None = None, timeout: float = DEFAULT_TIMEOUT_S, integer_fast_path: bool = True):
        if timeout <= 0:
            raise ConfigError(f"grading timeout must be positive, got {timeout}")
        self.size = workers if workers is not None else min(2, os.cpu_count() or 1)
        if self.size < 1:
            raise ConfigError(f"the grader needs at least one worker, got {workers}")
        self.timeout = timeout
        self.integer_fast_path = integer_fast_path
        self.stats = GraderStats()
        self._idle: list[GradingWorker] = []
        self._started = 0
        self._cond = threading.Condition()
        self._cache: OrderedDict[tuple[str, str], bool] = OrderedDict()
        self._closed = False

    # -- workers ------------------------------------------------------------------------------
    def _checkout(self) -> GradingWorker:
        with self._cond:
            while True:
                if self._closed:
                    raise ConfigError("this grader is closed")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        return worker
                    self._started -= 1
                if self._started < self.size:
                    self._started += 1
                    break
                self._cond.wait()
        try:
            worker = GradingWorker()
        except BaseException:
            with self._cond:
                self._started -= 1
                self._cond.notify()
            raise
        with self._cond:
            self.stats.workers_started += 1
        return worker

    def _checkin(self, worker: GradingWorker | None) -> None:
        with self._cond:
            if worker is None or self._closed:
                self._started -= 1
            else:
                self._idle.append(worker)
            self._cond.notify()
        if worker is not None and self._closed:
            worker.kill()

    def _run(self, pairs: list[tuple[str, str]]) -> list[bool]:
        """Grade pairs in one worker. One that misses its deadline is rejected, the worker killed and
        replaced, and the pairs after it graded by the next worker."""
        out: list[bool] = []
        while len(out) < len(pairs):
            rest = pairs[len(out) :]
            worker = self._checkout()
            verdicts = worker.grade(rest, self.timeout)
            with self._cond:
                self.stats.errors += sum(v is None for v in verdicts)
            out += [bool(v) for v in verdicts]
            if len(verdicts) == len(rest):
                self._checkin(worker)
                break
            worker.kill()
            self._checkin(None)
            with self._cond:
                self.stats.timeouts += 1
            out.append(False)  # the pair it hung on
        return out

    # -- grading ------------------------------------------------------------------------------
    def grade(self, answer: str | None, reference: str) -> bool:
        """True when `answer` is mathematically equivalent to `reference` (LaTeX or plain text)."""
        return self.grade_many([(answer, reference)])[0]

    def grade_many(self, pairs: Sequence[tuple[str | None, str]], chunk: int = 32) -> list[bool]:
        """Verdicts for many (answer, reference) pairs, spread over the workers in chunks."""
        out: list[bool | None] = [None] * len(pairs)
        todo: list[int] = []
        with self._cond:
            for i, (answer, reference) in enumerate(pairs):
                if answer is None or not answer.strip() or not reference.strip():
                    out[i] = False  # an empty or missing answer is never right
                    continue
                hit = self._cache.get((answer, reference))
                if hit is None and self.integer_fast_path and PLAIN_INTEGER.fullmatch(answer.strip()) \
                        and PLAIN_INTEGER.fullmatch(reference.strip()):
                    self.stats.graded += 1
                    self.stats.integers += 1
                    out[i] = int(answer) == int(reference)
                elif hit is not None:
                    self._cache.move_to_end((answer, reference))
                    self.stats.cached += 1
                    out[i] = hit
                else:
                    todo.append(i)
        if todo:
            batches = [todo[j : j + chunk] for j in range(0, len(todo), chunk)]
            results: dict[int, bool] = {}

            def work(batch: list[int]) -> None:
                verdicts = self._run([(str(pairs[i][0]), pairs[i][1]) for i in batch])
                results.update(zip(batch, verdicts))

            if len(batches) == 1:
                work(batches[0])
            else:
                self._parallel(work, batches)
            with self._cond:
                self.stats.graded += len(todo)
                for i in todo:
                    out[i] = results[i]
                    self._cache[(str(pairs[i][0]), pairs[i][1])] = results[i]
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return [bool(v) for v in out]

    def _parallel(self, work, batches: list[list[int]]) -> None:
        """Run batches on up to `size` threads (each holds one worker); the first error is raised."""
        queue = list(reversed(batches))
        errors: list[BaseException] = []
        lock = threading.Lock()

        def drain() -> None:
            while True:
                with lock:
                    if not queue or errors:
                        return
                    batch = queue.pop()
                try:
                    work(batch)
                except BaseException as e:  # noqa: BLE001 - re-raised on the caller's thread
                    with lock:
                        errors.append(e)

        threads = [threading.Thread(target=drain, daemon=True) for _ in range(min(self.size, len(batches)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    async def agrade(self, answer: str | None, reference: str) -> bool:
        """`grade` for async code: the blocking wait runs in a thread, the event loop keeps going."""
        return await asyncio.to_thread(self.grade, answer, reference)

    def warm(self) -> None:
        """Start every worker now (each imports SymPy once), so later timings are of grading alone."""
        workers = [self._checkout() for _ in range(self.size)]
        for w in workers:
            self._checkin(w)

    def worker_cpu_seconds(self) -> float:
        """CPU time used by the idle workers (all of them between calls): grading cost apart from load."""
        with self._cond:
            return sum(w.cpu_seconds() for w in self._idle)

    def close(self) -> None:
        """Stop the workers; a closed grader refuses further work."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for w in idle:
            w.kill()


_default: MathGrader | None = None
_default_lock = threading.Lock()


def default_grader() -> MathGrader:
    """The process-wide grader (started lazily, stopped at exit), shared by every math task."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            require_math_verify()
            _default = MathGrader()
            atexit.register(_default.close)
        return _default


# -- the worker process ------------------------------------------------------------------------


def verdict(answer: str, reference: str) -> bool:
    """Math-Verify on one pair, in a worker's main thread (its signal-based time limits work here).

    Both sides are LaTeX math (the reference as MATH writes it; the answer as extracted from a
    `\\boxed{}` or a plain-text statement), so each is parsed as inline math. `verify` is not
    symmetric: the reference goes first, as Math-Verify expects.
    """
    from math_verify import parse, verify

    gold = parse(f"${reference}$", parsing_timeout=5)
    pred = parse(f"${answer}$", parsing_timeout=5)
    if not gold or not pred:
        return False
    return bool(verify(gold, pred, timeout_seconds=5))


def serve() -> None:
    """Read JSON lines of [[answer, reference], ...] from stdin; write one verdict line per pair, as each is done."""
    import logging

    logging.disable(logging.WARNING)  # Math-Verify logs every timeout; the parent counts them
    import math_verify  # noqa: F401 - imported before "ready" so the first grade is not slow

    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin.buffer:
        for answer, reference in json.loads(line):
            try:
                result: bool | None = verdict(answer, reference)
            except Exception:  # noqa: BLE001 - one bad expression must not take the worker down
                result = None
            out.write(json.dumps(result).encode() + b"\n")
            out.flush()


if __name__ == "__main__":
    serve()

"""Several models of a ladder trained and swept at once, one process each.

Why: the CPU ladder's models are small (d ≤ 128), and torch spreads their small matrices over two
cores badly: on the 2-core machine a d=96, 3-layer model at 128 rows per step trained at
44 GFLOP/s on one thread and 48 on two, so two models side by side on one thread each do nearly
twice the work of one on both. Each process trains its model (checkpoints as ever, so a kill
loses at most the last interval of each), sweeps it into the one database (the Store takes
concurrent writers), and sends its progress back over a queue; the parent draws it and is the
one place the results are gathered. The biggest models go first, so the two last to finish are
the small ones (longest-processing-time first). A worker dies with its parent (PR_SET_PDEATHSIG
on Linux), so a killed lab leaves no orphan training behind.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from oomlab.lab.ladder import Ladder
from oomlab.lab.train import TrainProgress, TrainSpec

_events: Any = None  # the worker's end of the progress queue
EVERY_S = 0.25  # at most this often a worker reports a model's progress


def _init_worker(events: Any) -> None:
    global _events
    _events = events
    try:  # die with the parent: a SIGKILLed lab must not leave training running
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Relay:
    """The LabProgress a worker hands to `train_and_sweep`: events onto the queue, at most every EVERY_S."""

    def __init__(self) -> None:
        self._sent: dict[str, float] = {}

    def _due(self, key: str, final: bool) -> bool:
        now = time.monotonic()
        if final or now - self._sent.get(key, 0.0) >= EVERY_S:
            self._sent[key] = now
            return True
        return False

    def training(self, index: int, total: int, name: str, spec: TrainSpec) -> Callable[[TrainProgress], None]:
        _events.put(("training", index, total, name, spec.as_dict()))

        def update(p: TrainProgress) -> None:
            if self._due(f"train {name}", p.step == p.steps):
                _events.put(("train", name, p))
        return update

    def trained(self, name: str, model: Any) -> None:
        _events.put(("trained", name))

    def sweeping(self, index: int, total: int, name: str, units: int) -> Callable[[int, int, str], None]:
        _events.put(("sweeping", index, total, name, units))

        def update(done: int, total: int, key: str) -> None:
            if self._due(f"sweep {name}", done == total):
                _events.put(("sweep", name, done, total, key))
        return update

    def note(self, text: str) -> None:
        _events.put(("note", text))


def _job(ladder: Ladder, db: str, index: int, total: int, budget: float, fmt: str, seed: int, spec: TrainSpec,
         device: str, threads: int | None) -> dict[str, Any]:
    from oomlab.lab.run import train_and_sweep
    from oomlab.lab.summary import lab_dir_for
    from oomlab.store import Store

    store = Store(db)
    try:
        return train_and_sweep(ladder, store, lab_dir_for(db), index, total, budget, fmt, seed, spec, device=device,
                               threads=threads, progress=_Relay())
    finally:
        store.close()


def _forward(events: Any, progress: Any) -> None:
    """Draw the workers' events with the parent's LabProgress until the sentinel None."""
    updates: dict[str, Callable[..., None]] = {}
    while (event := events.get()) is not None:
        kind, *rest = event
        if kind == "training":
            index, total, name, spec = rest
            updates[f"train {name}"] = progress.training(index, total, name, TrainSpec.from_dict(spec))
        elif kind == "train":
            updates.get(f"train {rest[0]}", lambda p: None)(rest[1])
        elif kind == "trained":
            progress.trained(rest[0], None)
        elif kind == "sweeping":
            index, total, name, units = rest
            updates[f"sweep {name}"] = progress.sweeping(index, total, name, units)
        elif kind == "sweep":
            updates.get(f"sweep {rest[0]}", lambda *a: None)(*rest[1:])
        elif kind == "note":
            progress.note(rest[0])


def run_parallel(ladder: Ladder, db: str | Path, specs: list[tuple[float, str, int, TrainSpec]], *, device: str,
                 threads: int | None, jobs: int, progress: Any) -> list[dict[str, Any]]:
    """Every (budget, format, seed, spec) trained and swept by `jobs` processes; entries in `specs`' order."""
    context = multiprocessing.get_context("spawn")  # torch and threads: never fork
    events = context.Queue()
    relay = threading.Thread(target=_forward, args=(events, progress), daemon=True, name="oomlab-lab-progress")
    relay.start()
    order = sorted(range(len(specs)), key=lambda i: -specs[i][3].flops)  # longest first
    entries: list[dict[str, Any] | None] = [None] * len(specs)
    pool = ProcessPoolExecutor(min(jobs, len(specs)), mp_context=context, initializer=_init_worker,
                               initargs=(events,))
    failed = True
    try:
        futures = {pool.submit(_job, ladder, str(db), i, len(specs), *specs[i], device, threads): i for i in order}
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            entries[futures[future]] = future.result()  # the first failure is raised here
        failed = False
    finally:
        # on a failure, do not wait for the other models: their workers die with this process
        pool.shutdown(wait=not failed, cancel_futures=failed)
        events.put(None)
        relay.join(timeout=10)
    return [e for e in entries if e is not None]

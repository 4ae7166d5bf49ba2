"""oomlab's own overhead in a sweep: wall time of Sweep.run vs the backend's raw generation time.

The backend is wrapped in a timer that sums the seconds spent inside its generate() calls; all
the rest of Sweep.run (cache look-ups, SQLite commits, energy metering, extraction, scoring)
is oomlab's overhead. The one-off setup (registry imports, about a second) is printed apart. Both are measured in the same run. Last line: `overhead: X.X%`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from oomlab.backends.base import GenRequest, Generation
from oomlab.backends.llamacpp import LlamaCppBackend
from oomlab.store import Store
from oomlab.sweep import Sweep, SweepConfig


class TimedBackend:
    """The real backend, with the time spent inside generate() summed."""

    def __init__(self, backend: LlamaCppBackend):
        self.inner = backend
        self.name, self.model_id, self.facts = "llamacpp", backend.model_id, backend.facts
        self.seconds = 0.0

    def generate(self, request: GenRequest) -> list[Generation]:
        t0 = time.perf_counter()
        try:
            return self.inner.generate(request)
        finally:
            self.seconds += time.perf_counter() - t0

    def close(self) -> None:
        self.inner.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--problems", type=int, default=20)
    ap.add_argument("--n", type=int, default=16)
    args = ap.parse_args()
    backend = TimedBackend(LlamaCppBackend())
    cfg = SweepConfig(problems=args.problems, n=args.n,
                      strategies=["greedy", "majority", "best-of-n", "best-of-n:scorer=logprob"])
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        t0 = time.perf_counter()
        sweep = Sweep(cfg, store, backend=backend)  # imports the registries once; the model is already loaded
        setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = sweep.run()
        wall = time.perf_counter() - t0
    backend.close()
    overhead = (wall - backend.seconds) / backend.seconds
    print(f"samples drawn: {result.drawn}")
    print(f"setup (once per sweep, not per sample): {setup:.2f} s")
    print(f"sweep wall: {wall:.2f} s, raw generation: {backend.seconds:.2f} s")
    print(f"overhead: {100 * overhead:.1f}%")


if __name__ == "__main__":
    main()

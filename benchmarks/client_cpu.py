"""CPU seconds the sweep process spends per sample booked, against a zero-latency local server.

The server runs in its own process; the figure is the sweep's own process time over Sweep.run()
(start-up, model probe and rendering excluded) divided by the samples it committed.
Target (issue 12): <= 1.0 ms. Last line: `client CPU per sample: X.XX ms`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _servers import latency_server

from oomlab.store import Store
from oomlab.sweep import Sweep, SweepConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--problems", type=int, default=100)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    with latency_server(0.0) as url, tempfile.TemporaryDirectory() as tmp:
        cfg = SweepConfig(task="arithmetic", strategies=["majority"], n=args.n, problems=args.problems, seed=0,
                          backend="openai", backend_options={"base_url": url, "concurrency": args.concurrency})
        store = Store(Path(tmp) / "cpu.db")
        sweep = Sweep(cfg, store)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = sweep.run()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        sweep.backend.close()
        n = store.run(result.run_id).samples_drawn
    print(f"{n} samples in {wall:.2f} s wall, {cpu:.2f} s CPU of the sweep process "
          f"({n / wall:,.0f} samples/s; concurrency {args.concurrency})")
    print(f"client CPU per sample: {1000 * cpu / n:.2f} ms")


if __name__ == "__main__":
    main()

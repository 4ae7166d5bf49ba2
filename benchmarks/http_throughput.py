"""Requests in flight against a latency-bound server (every request 200 ms, unlimited concurrency).

The server (oomlab.testing.LatencyServer, its own process) stands in for vLLM/SGLang's continuous
batching. Figures: peak requests in flight over the backend's concurrency C (target >= 0.95), and the
sweep's wall time over the ideal requests x latency / C (target <= 1.5), from the first request's arrival at the
server (start-up excluded: Sweep.run() creating its run and problems) to the end of Sweep.run() (the last
commit included). The default 64 problems x 16 samples is four whole waves of C = 256: with 40 problems the
last wave is half full and the floor is 0.6 s against the 0.5 s ideal, a ratio of 1.2 that no client can beat.
Last line: `in-flight ratio: X.XX · wall/ideal: Y.YY`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx
from _servers import latency_server

from oomlab.store import Store
from oomlab.sweep import Sweep, SweepConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--problems", type=int, default=64)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--latency", type=float, default=0.2)
    args = ap.parse_args()
    with latency_server(args.latency) as url, tempfile.TemporaryDirectory() as tmp:
        cfg = SweepConfig(task="arithmetic", strategies=["majority"], n=args.n, problems=args.problems, seed=0,
                          backend="openai", backend_options={"base_url": url, "concurrency": args.concurrency})
        sweep = Sweep(cfg, Store(Path(tmp) / "tp.db"))
        t0 = time.time()
        sweep.run()
        t1 = time.time()
        sweep.backend.close()
        stats = httpx.get(url.removesuffix("/v1") + "/stats").json()
    requests = stats["requests"]
    ideal = requests * args.latency / args.concurrency
    start_up = stats["first_request"] - t0  # Sweep.run() before its first request reached the server
    wall = t1 - stats["first_request"]
    print(f"{requests} requests · peak {stats['peak_in_flight']} in flight of C={args.concurrency} · "
          f"start-up {start_up:.2f} s · then {wall:.2f} s to the end of the sweep · ideal {ideal:.2f} s")
    print(f"in-flight ratio: {stats['peak_in_flight'] / args.concurrency:.2f} · wall/ideal: {wall / ideal:.2f}")


if __name__ == "__main__":
    main()

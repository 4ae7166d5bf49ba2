"""Requests in flight against a latency-bound server (every request 200 ms, unlimited concurrency).

The server (oomlab.testing.LatencyServer, its own process) stands in for vLLM/SGLang's continuous
batching. Figures: peak requests in flight over the backend's concurrency C (target >= 0.95), and the
sweep's wall time over the ideal requests x latency / C (target <= 1.5; start-up excluded).
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
    ap.add_argument("--problems", type=int, default=40)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--latency", type=float, default=0.2)
    args = ap.parse_args()
    with latency_server(args.latency) as url, tempfile.TemporaryDirectory() as tmp:
        cfg = SweepConfig(task="arithmetic", strategies=["majority"], n=args.n, problems=args.problems, seed=0,
                          backend="openai", backend_options={"base_url": url, "concurrency": args.concurrency})
        sweep = Sweep(cfg, Store(Path(tmp) / "tp.db"))
        t0 = time.perf_counter()
        sweep.run()
        wall = time.perf_counter() - t0
        sweep.backend.close()
        stats = httpx.get(url.removesuffix("/v1") + "/stats").json()
    requests = stats["requests"]
    ideal = requests * args.latency / args.concurrency
    print(f"{requests} requests · peak {stats['peak_in_flight']} in flight of C={args.concurrency} · "
          f"wall {wall:.2f} s · ideal {ideal:.2f} s")
    print(f"in-flight ratio: {stats['peak_in_flight'] / args.concurrency:.2f} · wall/ideal: {wall / ideal:.2f}")


if __name__ == "__main__":
    main()

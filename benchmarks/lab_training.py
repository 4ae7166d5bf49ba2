"""Lab training throughput: FLOP/s as the ledger counts it (6N per token + attention) over the fp32 matmul peak.

Both are measured in the same run, with the same threads (one by default: on CPU the lab trains one model per
core, each on one thread; `--threads 2` measures one model on both cores): the peak is the best of several n×n
fp32 matmuls (2n³ FLOPs each); training is the lab's own loop (oomlab.lab.train: data generation,
optimiser, checkpoints) on the default task, timed from the first step to the final checkpoint.
Last line: `training/peak: X.XX`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `oomlab lab run` does: idle threads sleep, not spin
import torch  # noqa: E402

from oomlab.lab.ladder import Ladder, plan  # noqa: E402
from oomlab.lab.presets import PRESETS  # noqa: E402
from oomlab.lab.train import train  # noqa: E402


def matmul_peak(n: int, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--rows", type=int, default=128)
    ap.add_argument("--flops", type=float, default=2e12, help="training budget of the timed run")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: as `oomlab lab run` trains on CPU, one model per core)")
    ap.add_argument("--n", type=int, default=1024, help="matmul size for the peak")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cpu = PRESETS["cpu-sum"]  # the sum ladder: its figures in README were measured on it
    ladder = Ladder("bench", (args.flops,), task=cpu.task, task_options=cpu.task_options, rows=args.rows, lr=cpu.lr,
                    shapes=((args.d_model, args.layers),))
    spec = plan(ladder, args.flops, "cot", 0)
    peak_before = matmul_peak(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        trained = train(spec, tmp, threads=args.threads)
        seconds = time.perf_counter() - t0
    peak = max(peak_before, matmul_peak(args.n))
    six_nd = 6 * spec.config.n_params_non_embedding * spec.tokens
    counted = spec.flops
    print(f"model: {args.d_model}x{args.layers}, N = {spec.config.n_params_non_embedding:,} non-embedding, "
          f"{spec.steps} steps of {args.rows} rows, {spec.tokens:,} tokens, final loss {trained.final_loss:.3f}")
    print(f"threads {args.threads}, load average {os.getloadavg()[0]:.2f} (other work on the machine lowers both numbers)")
    print(f"fp32 matmul peak ({args.n}^3): {peak / 1e9:.1f} GFLOP/s")
    print(f"training: {seconds:.1f} s, {spec.tokens / seconds:,.0f} tokens/s, "
          f"{counted / seconds / 1e9:.1f} GFLOP/s counted (6N + attention), {six_nd / seconds / 1e9:.1f} GFLOP/s as 6·N·D")
    print(f"training/peak: {counted / seconds / peak:.2f}")


if __name__ == "__main__":
    main()

"""The lab's ladders: `cpu` (the default), `cpu-chain`, `gpu` (with --device cuda) and `tiny` (the tests').

Picked by measuring on the shared 2-core CPU (one training seed per point; see README, "The lab"):

- `cpu`, lab-sum (2-5 two-digit numbers, zero-padded, digits reversed as in Lee et al. 2023,
  arXiv 2307.03381): greedy accuracy of the direct format climbs through the ladder, 1.0% at 3e10
  FLOPs to 96.5% at 3e12, so neighbouring models' test-time curves overlap and the exchange rate
  has points. The scratchpad format learns later (50% at 1e12).
- `cpu-chain`, lab-chain (2-6 operations mod 7): the direct format never leaves chance, the
  scratchpad jumps from chance (3e11) to 61% (1e12) and 100% (3e12): chain of thought is worth more
  than the ladder can price, but no two models' curves overlap.

Both keep Hoffmann et al.'s tokens ≈ 20 × parameters: on lab-chain at 1e12 FLOPs the scratchpad
model reached 24% greedy at 55k parameters (≈ 55 tokens per parameter), 60% at 99k (≈ 17) and
20% at 332k (≈ 3).
"""

from __future__ import annotations

from oomlab.lab.ladder import Ladder

SUM = {"min_operands": 2, "max_operands": 5, "digits": 2, "padded": True, "reverse": True}
CHAIN = {"modulus": 7, "min_ops": 2, "max_ops": 6, "ops": "+-*", "aligned": True}

PRESETS: dict[str, Ladder] = {
    "tiny": Ladder(
        name="tiny", budgets=(1e8, 3e8, 1e9), task="lab-chain", task_options={**CHAIN, "max_ops": 3},
        tokens_per_param=20.0, rows=16, lr=5e-3, problems=24, n=4, temperature=1.0,
        shapes=((8, 1), (12, 1), (16, 1), (24, 1), (32, 1)),
        note="seconds on one core; exercises every part, measures nothing worth quoting"),
    "cpu": Ladder(
        name="cpu", budgets=(3e10, 1e11, 3e11, 5e11, 1e12, 3e12), task="lab-sum", task_options=SUM,
        primary="direct", tokens_per_param=20.0, rows=32, lr=2e-3, problems=400, n=16, temperature=1.0,
        note="measured: 12.4 minutes in one command on the 2-core machine (2 threads, load average 0.8-1.9)"),
    "cpu-chain": Ladder(
        name="cpu-chain", budgets=(3e10, 1e11, 3e11, 1e12, 3e12), task="lab-chain", task_options=CHAIN,
        primary="cot", tokens_per_param=20.0, rows=32, lr=2e-3, problems=400, n=16, temperature=1.0,
        note="measured: 22.5 minutes in one command under a load average of 4-7 (one thread)"),
    "gpu": Ladder(
        name="gpu", budgets=(1e12, 3e12, 1e13, 3e13, 1e14, 3e14, 1e15), task="lab-sum",
        task_options={**SUM, "max_operands": 8, "digits": 3}, primary="direct", tokens_per_param=20.0, rows=128,
        lr=2e-3, problems=400, n=32, temperature=1.0, device="cuda",
        note="3 OOMs of training compute on a harder sum (2-8 three-digit numbers); sized for ≈ 10 minutes "
             "on one H100/H200 (estimated, not yet run)"),
}

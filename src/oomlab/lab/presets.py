"""The lab's ladders: `cpu` (the default), `cpu-sum`, `cpu-chain`, `gpu` (--device cuda), `tiny`, `tiny-countdown`.

Picked by measuring on the shared 2-core CPU (one training seed per point; see README, "The lab"):

- `cpu`, lab-countdown (3-4 digits and a target, + - * left to right; any valid chain counts):
  verifying an answer is easier than finding one, so best-of-n with the task's own checker (the
  `check` scorer: it reads the problem, never the reference) is deployable. Measured (one command,
  9 min 35 s on the idle 2-core machine, two models at a time on one thread each): direct greedy
  9.0% at 3e10 FLOPs to 57.7% at 1e13 (short of 70%); best-of-n[check]@16 lifts every model, +17.3
  points [+12.7, +22.3] at 3e10 and +41.3 [+35.3, +47.0] at 1e11; the exchange rate along its
  iso-accuracy lines is finite, slope +0.18 [+0.15, +0.21] (57 points): a 10× larger training
  budget needs 1.5× more test-time FLOPs for the same accuracy, not fewer. On levels 3-5 instead
  (ladder 3e10-3e12, 150 problems) greedy reached only 35% at 3e12; with the digits in a fixed
  order (`ordered`) 29% at 1e12; three digits only, 2% at 3e10 and 58% at 1e13 (about 170
  held-out problems exist); three ordered digits, 30.0% and 91.7%, but that is a choice of two
  operators among nine, which a guesser with the checker solves at 16 samples ~85% of the time.
  At 1e13, 5 tokens per parameter (d=128) gave 47.3% greedy and 60 (d=64) 59.0%, vs 57.7% at 20;
  lr 4e-3 54.0%, a 64x6 shape 56.7%, one canonical solution per problem as the answer 43.3%.
  Past the ladder (one direct model each): 60.7% at 3e13 (15 min of training on one core) and
  68.7% at 1e14 (48 min): 70% lies beyond what 20 minutes on 2 cores can train.
  Temperature: at T = 0.8 instead of 1.0 (the earlier one-process ladder's models, direct) best-of-n[check]@16 lifted the
  3e10 model by +21.7 points [+17.0, +26.3] (vs +17.3) and the 1e13 one by +36.7 (vs +37.0), slope
  +0.20 [+0.17, +0.23]: within each other's intervals, so the ladder keeps T = 1.0.
- `cpu-sum`, lab-sum (2-5 two-digit numbers, zero-padded, digits reversed as in Lee et al. 2023,
  arXiv 2307.03381), the default before lab-countdown: greedy accuracy of the direct format climbs
  through the ladder, 1.0% at 3e10 FLOPs to 96.5% at 3e12. But checking a sum means computing it,
  so no deployable verifier exists: majority@16 and best-of-n[logprob]@16 stay at or below greedy
  on every model, at T = 1.0 and at T = 0.6 alike (majority@16 − greedy on the 1e11 model: −3.4
  and −3.1 points), and the exchange rate along majority's lines has at most 2 points.
- `cpu-chain`, lab-chain (2-6 operations mod 7): the direct format never leaves chance, the
  scratchpad jumps from chance (3e11) to 61% (1e12) and 100% (3e12): chain of thought is worth more
  than the ladder can price, but no two models' curves overlap.

`cpu-sum`, `cpu-chain` and the temperature comparison were measured before the lab's GELU took GPT-2's
tanh form and its AdamW the fused kernel, one model at a time; they have not been re-run since.

All keep Hoffmann et al.'s tokens ≈ 20 × parameters: on lab-chain at 1e12 FLOPs the scratchpad
model reached 24% greedy at 55k parameters (≈ 55 tokens per parameter), 60% at 99k (≈ 17) and
20% at 332k (≈ 3).
"""

from __future__ import annotations

from oomlab.lab.ladder import Ladder

SUM = {"min_operands": 2, "max_operands": 5, "digits": 2, "padded": True, "reverse": True}
COUNTDOWN = {"min_numbers": 3, "max_numbers": 4}
CHAIN = {"modulus": 7, "min_ops": 2, "max_ops": 6, "ops": "+-*", "aligned": True}

PRESETS: dict[str, Ladder] = {
    "tiny": Ladder(
        name="tiny", budgets=(1e8, 3e8, 1e9), task="lab-chain", task_options={**CHAIN, "max_ops": 3},
        tokens_per_param=20.0, rows=16, lr=5e-3, problems=24, n=4, temperature=1.0,
        shapes=((8, 1), (12, 1), (16, 1), (24, 1), (32, 1)),
        note="seconds on one core; exercises every part, measures nothing worth quoting"),
    "tiny-countdown": Ladder(
        name="tiny-countdown", budgets=(1e8, 3e8, 1e9), formats=("direct",), primary="direct", task="lab-countdown",
        task_options={"min_numbers": 3, "max_numbers": 3}, tokens_per_param=20.0, rows=16, lr=5e-3, problems=24, n=4,
        temperature=1.0, shapes=((8, 1), (12, 1), (16, 1), (24, 1), (32, 1)),
        note="seconds on one core; exercises the check scorer's path (best-of-n by a verifier that reads the "
             "problem), measures nothing worth quoting"),
    "cpu": Ladder(
        name="cpu", budgets=(3e10, 1e11, 3e11, 1e12, 3e12, 1e13), task="lab-countdown", task_options=COUNTDOWN,
        primary="direct", tokens_per_param=20.0, rows=32, lr=2e-3, problems=300, n=16, temperature=1.0,
        note="measured: 9 min 35 s on the idle 2-core machine (two models at a time, one thread each; 190% "
             "CPU); greedy 9% → 58%, best-of-n[check]@16 26% → 93%"),
    "cpu-sum": Ladder(
        name="cpu-sum", budgets=(3e10, 1e11, 3e11, 5e11, 1e12, 3e12), task="lab-sum", task_options=SUM,
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

"""Coverage of oomlab's own 95% intervals, by simulation from populations whose truth is known.

Each figure is the share of seeded replications in which the interval oomlab reports contains the
true value, computed with the very functions the CLI and the report use:

* pass@k and maj@k — per-problem unbiased estimates from one draw of N samples
  (`estimators.pass_at_k`, `estimators.majority_at_k`), interval from `intervals.column_intervals`
  (what `run_curves` puts on every rung). Problems' success rates come from a Beta population, so
  problems differ in difficulty as in a real task; the truth is the population mean.
* a 0/1 column at low p (greedy: one outcome per problem): Bernoulli(p) problems, the same
  `column_intervals` (which gives such a column the Wilson interval), at p = 0.02 on 100 problems
  and p = 0.05 on 30, the two cases where the percentile bootstrap covered 0.88 and 0.77.
* compute-matched difference (`compute_matched.compare_at_matched_flops`): the small model's
  accuracy at a budget between two rungs minus the large model's greedy pass@1, paired (the same
  problems, correlated through difficulty) and unpaired (the large model on other problems).
* the exchange-rate slope (`exchange_rate.exchange_rate`, bootstrap over problems): five models
  whose iso-accuracy lines have a known common slope, -log10(15); per problem and rung either one
  0/1 outcome (a re-run strategy) or the fraction right of 8 samples (a draw strategy's estimate).

Target: every figure within [0.93, 0.97]. The Monte Carlo standard error of a figure is printed
beside it (sqrt(c(1-c)/reps)). Last line: `worst coverage: X.XXX`, the figure farthest from 0.95.

    python benchmarks/interval_coverage.py            # 3-4 minutes on 2 shared cores
    python benchmarks/interval_coverage.py --reps 2000 --exchange-reps 500
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import betaln, expit
from scipy.stats import binom, multinomial

from oomlab.analysis.compute_matched import ModelSpec, compare_at_matched_flops
from oomlab.estimators import majority_at_k, pass_at_k
from oomlab.analysis.exchange_rate import ModelRun, exchange_rate
from oomlab.analysis.intervals import column_intervals

LEVEL = 0.95
N_BOOT = 1000


@dataclass
class Figure:
    name: str
    setting: str
    method: str
    hits: int
    reps: int
    seconds: float

    @property
    def coverage(self) -> float:
        return self.hits / self.reps

    @property
    def se(self) -> float:
        c = self.coverage
        return math.sqrt(max(c * (1 - c), 1e-12) / self.reps)


def run(name: str, setting: str, reps: int, one: Callable[[np.random.Generator, int], tuple[bool, str]]) -> Figure:
    """`one(rng, rep)` -> (the interval covered the truth, interval method); reps seeded 0..reps-1."""
    start, hits, method = time.perf_counter(), 0, ""
    for rep in range(reps):
        ok, method = one(np.random.default_rng([rep, zlib.crc32(f"{name}|{setting}".encode())]), rep)
        hits += ok
    return Figure(name, setting, method, hits, reps, time.perf_counter() - start)


# ----------------------------------------------------------------------------- pass@k, maj@k
def pass_at_k_case(n_problems: int, n_samples: int, k: int, a: float, b: float):
    """Problems p ~ Beta(a, b); truth E[1 - (1-p)^k] = 1 - B(a, b+k) / B(a, b)."""
    truth = 1.0 - math.exp(betaln(a, b + k) - betaln(a, b))

    def one(rng: np.random.Generator, rep: int) -> tuple[bool, str]:
        c = rng.binomial(n_samples, rng.beta(a, b, n_problems))
        col = np.array([[pass_at_k(n_samples, int(ci), k)] for ci in c])
        _, lo, hi, methods = column_intervals(col, LEVEL, N_BOOT, seed=rep)
        return bool(lo[0] <= truth <= hi[0]), methods[0]

    return truth, one


def _exact_majority(probs: np.ndarray, k: int) -> float:
    """P(plurality of k iid draws is answer 0), ties broken uniformly; answer 0 is the correct one."""
    total = 0.0
    m = probs.size
    for counts in itertools.product(range(k + 1), repeat=m):
        if sum(counts) != k:
            continue
        top = max(counts)
        if counts[0] != top:
            continue
        tied = sum(c == top for c in counts)
        total += multinomial.pmf(counts, k, probs) / tied
    return total


def majority_case(n_problems: int, n_samples: int, k: int, population: int = 400, seed: int = 12345):
    """A finite population of problems, each with a correct answer and three wrong ones (Dirichlet
    shares of the wrong mass); truth: the population mean of exact maj@k."""
    rng = np.random.default_rng(seed)
    p_correct = rng.beta(2.0, 2.5, population)
    wrong = rng.dirichlet([1.0, 1.0, 1.0], population) * (1 - p_correct)[:, None]
    table = np.column_stack([p_correct, wrong])
    truth = float(np.mean([_exact_majority(row, k) for row in table]))
    labels = np.array(["right", "w1", "w2", "w3"])

    def one(rng: np.random.Generator, rep: int) -> tuple[bool, str]:
        idx = rng.integers(0, population, n_problems)
        col = np.empty((n_problems, 1))
        for i, j in enumerate(idx):
            draws = labels[rng.choice(4, size=n_samples, p=table[j])]
            col[i, 0] = majority_at_k(draws.tolist(), (draws == "right").tolist(), k)
        _, lo, hi, methods = column_intervals(col, LEVEL, N_BOOT, seed=rep)
        return bool(lo[0] <= truth <= hi[0]), methods[0]

    return truth, one


# ----------------------------------------------------------------------------- 0/1 column
def binary_case(n_problems: int, p: float):
    def one(rng: np.random.Generator, rep: int) -> tuple[bool, str]:
        col = (rng.random((n_problems, 1)) < p).astype(float)
        _, lo, hi, methods = column_intervals(col, LEVEL, N_BOOT, seed=rep)
        return bool(lo[0] <= p <= hi[0]), methods[0]

    return p, one


def exact_binary_coverage(n_problems: int, p: float) -> float:
    """The 0/1 column's coverage without simulation: P(count) summed where its interval holds p."""
    hit = 0.0
    for x in range(n_problems + 1):
        col = np.r_[np.ones(x), np.zeros(n_problems - x)][:, None]
        _, lo, hi, _ = column_intervals(col, LEVEL, 1)
        hit += binom.pmf(x, n_problems, p) * (lo[0] <= p <= hi[0])
    return float(hit)


# ----------------------------------------------------------------------------- compute-matched
TOKENS = [100.0, 200.0, 400.0, 800.0]
KS = [1, 2, 4, 8]
SPEC = ModelSpec("m", 1e9, 1e12)  # both sides the same size and data: t* = the large model's tokens


def matched_case(n_problems: int, paired: bool, a: float = 0.6, b: float = 1.4):
    """Small: pass@k over a Beta(a, b) population at rungs k = 1, 2, 4, 8 (N = 8), budget 300 tokens
    (half way from k=2 to k=4). Large: greedy, right with probability 0.3 + 0.7 p on the same
    problem (paired) or on independent problems (unpaired)."""
    mean_p = a / (a + b)
    cover = [1.0 - math.exp(betaln(a, b + k) - betaln(a, b)) for k in KS]
    truth = 0.5 * (cover[1] + cover[2]) - (0.3 + 0.7 * mean_p)

    def one(rng: np.random.Generator, rep: int) -> tuple[bool, str]:
        p = rng.beta(a, b, n_problems)
        c = rng.binomial(8, p)
        small = np.array([[pass_at_k(8, int(ci), k) for k in KS] for ci in c])
        p_large = p if paired else rng.beta(a, b, n_problems)
        large = (rng.random(n_problems) < 0.3 + 0.7 * p_large).astype(float)
        res = compare_at_matched_flops(SPEC, TOKENS, small, SPEC, large, 300.0, ratio=1.0, n_boot=N_BOOT,
                                       seed=rep, level=LEVEL, paired=paired)
        lo, hi = res.difference_interval
        return bool(lo <= truth <= hi), res.interval_method

    return truth, one


# ----------------------------------------------------------------------------- exchange rate
TEST = np.logspace(9, 14, 11)
TRAIN_LOG10 = [19.0, 19.5, 20.0, 20.5, 21.0]


def exchange_case(n_problems: int, n_boot: int, samples: int, slope: float = -math.log10(15)):
    """accuracy = sigmoid(1.2 (-slope (log10 train - 20) + log10 test - 11.5)); iso-accuracy lines are
    exactly log10 test = const + slope log10 train. Per problem and rung: one 0/1 outcome
    (``samples`` = 1, a re-run strategy) or the fraction right of ``samples`` draws."""

    def one(rng: np.random.Generator, rep: int) -> tuple[bool, str]:
        models = []
        for i, lt in enumerate(TRAIN_LOG10):
            mean = expit(1.2 * (-slope * (lt - 20.0) + np.log10(TEST) - 11.5))
            pp = rng.binomial(samples, np.broadcast_to(mean, (n_problems, TEST.size))) / samples
            models.append(ModelRun(f"m{i}", 10.0**lt, TEST, pp))
        res = exchange_rate(models, level=LEVEL, n_boot=n_boot, seed=rep)
        lo, hi = res.slope_interval
        return bool(lo <= slope <= hi), res.interval_method

    return slope, one


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=1000, help="replications per figure (default 1000)")
    ap.add_argument("--exchange-reps", type=int, default=400,
                    help="replications for each exchange-rate slope, the slow ones (default 400)")
    ap.add_argument("--problems", type=int, default=100, help="problems per replication (default 100)")
    args = ap.parse_args()
    reps, n = args.reps, args.problems

    cases = [
        ("pass@4", f"{n} problems, p ~ Beta(0.5, 1.5), N=16", reps, pass_at_k_case(n, 16, 4, 0.5, 1.5)),
        ("maj@5", f"{n} problems, 4 answers, N=16", reps, majority_case(n, 16, 5)),
        ("0/1 column", f"p = 0.02 on {n} problems", reps, binary_case(n, 0.02)),
        ("0/1 column", "p = 0.05 on 30 problems", reps, binary_case(30, 0.05)),
        ("compute-matched, paired", f"{n} problems, same on both sides", reps, matched_case(n, True)),
        ("compute-matched, unpaired", f"{n} + {n} different problems", reps, matched_case(n, False)),
        ("exchange-rate slope", "5 models x 11 rungs x 200 problems, 0/1 per rung", args.exchange_reps,
         exchange_case(200, 200, 1)),
        ("exchange-rate slope", "the same, fraction of 8 samples per rung", args.exchange_reps,
         exchange_case(200, 200, 8)),
    ]
    print(f"nominal {LEVEL:.0%} intervals; target coverage within [0.93, 0.97]; {N_BOOT} bootstrap draws "
          "where a bootstrap is used (200 for the exchange rate)")
    print(f"{'estimate':<27} {'setting':<52} {'truth':>8} {'coverage':>9} {'± MC se':>8} {'reps':>5} "
          f"{'secs':>6}  interval")
    figures = []
    for name, setting, r, (truth, one) in cases:
        f = run(name, setting, r, one)
        figures.append(f)
        flag = "" if 0.93 <= f.coverage <= 0.97 else "  <- outside target"
        print(f"{name:<27} {setting:<52} {truth:>8.4f} {f.coverage:>9.3f} {f.se:>8.3f} {f.reps:>5} "
              f"{f.seconds:>6.1f}  {f.method}{flag}", flush=True)
    exact = ", ".join(f"p = {p} on {m}: {exact_binary_coverage(m, p):.3f}" for m, p in ((n, 0.02), (30, 0.05)))
    print(f"0/1 columns, exact coverage (a sum over the binomial counts, no simulation noise): {exact}")
    worst = max(figures, key=lambda f: abs(f.coverage - LEVEL))
    print(f"worst coverage: {worst.coverage:.3f}")


if __name__ == "__main__":
    main()

"""Particle filtering against beam search and best-of-n at equal measured compute, on the embedded model.

The step scorer is the model's own: `step-logprob`, the mean token log-probability of the steps so
far (best-of-n ranks whole samples by the same quantity, `logprob`). No reference is read by any
of the three, so all are deployable. A PRM cannot run on this machine.

The task must be one where a step can be right or wrong and the model is sometimes right:
Game of 24's step format and MATH are out of reach of a 270M model (pass@8 = 0 of 10 easy
Game of 24 problems, measured while writing this), so the benchmark defines `chained-sums`: add
four one-digit numbers one step per line (`3 + 5 = 8`, `8 + 2 = 10`, `10 + 7 = 17`,
`Answer: 17`), each step a single addition the model gets right most of the time, the chain
right only if every step is. It is registered here, through the task registry, for this script
only (the package's own tasks are untouched).

Equal compute, measured: each search runs at its knob 1, 2 and 4 (particles; beams) and
best-of-n is estimated at every n up to 32 from one draw of 32; every rung's FLOPs per problem are
measured by the ledger (Kaplan et al. 2020). A search pays each distinct context's prompt in
full, because its requests do not share one prefix evaluation the way a draw's samples do, so
one particle or one beam (four steps) already costs about four greedy solutions here. For each
particle-filter rung the table then puts beside it the largest rung of each other strategy whose
measured FLOPs stay within 15% above the particle filter's: the comparison is at the compute the
particle filter actually spent, and every row shows its own measured FLOPs. Intervals are 95%:
Wilson for a 0/1 column, bootstrap over problems for a draw's expected accuracy.

    python benchmarks/particle_filter.py [--problems 20] [--db PATH]

Runtime: most of an hour for the defaults on 2 shared cores (one llama.cpp thread). The last
line gives, at each particle-filter rung, every strategy's accuracy at that compute.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

from oomlab.backends.base import SamplingParams
from oomlab.backends.llamacpp import LlamaCppBackend
from oomlab.problem import Problem
from oomlab.tasks.base import TASKS, Task
from oomlab.tasks.numeric import extract_number

EXAMPLES = ((3, 5, 2, 7), (6, 1, 4, 8), (9, 2, 5, 3))


def steps_of(numbers: tuple[int, ...]) -> list[str]:
    total, lines = numbers[0], []
    for n in numbers[1:]:
        lines.append(f"{total} + {n} = {total + n}")
        total += n
    return [*lines, f"Answer: {total}"]


@TASKS.register("chained-sums")
class ChainedSums(Task):
    """Four one-digit numbers added one step per line (this benchmark's task; seeded, exactly checked)."""

    description: ClassVar[str] = "add four one-digit numbers, one step per line (benchmarks/particle_filter.py)"

    def __init__(self, terms: int = 4):
        self.terms = terms

    def problems(self, n: int, seed: int = 0) -> list[Problem]:
        rng = random.Random(f"chained-sums:{seed}")
        out, seen = [], set(EXAMPLES)
        while len(out) < n:
            numbers = tuple(rng.randint(1, 9) for _ in range(self.terms))
            if numbers in seen:
                continue
            seen.add(numbers)
            out.append(Problem(f"sums-{'-'.join(map(str, numbers))}", {"numbers": list(numbers)},
                               str(sum(numbers)), {"difficulty": self.terms}))
        return out

    def prompt(self, problem: Problem) -> str:
        blocks = ["Add the numbers one step at a time."]
        for numbers in EXAMPLES:
            blocks.append("\n".join([f"Problem: {' + '.join(map(str, numbers))}", "Steps:", *steps_of(numbers)]))
        blocks.append(f"Problem: {' + '.join(map(str, problem.inputs['numbers']))}\nSteps:\n")
        return "\n\n".join(blocks)

    def extract(self, text: str) -> str | None:
        return extract_number(text.split("\n\n", 1)[0])

    def sampling(self) -> SamplingParams:
        return SamplingParams(max_tokens=64, stop=("\n\n", "\nProblem:"))

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "terms": self.terms}


SEARCHES = ["particle-filter", "beam"]
DRAW = "best-of-n:scorer=logprob"
TOLERANCE = 1.15  # a rung counts as "the same compute" up to 15% above the particle filter's


def main() -> None:
    from oomlab.analysis.curves import run_curves
    from oomlab.store import Store
    from oomlab.sweep import Sweep, SweepConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--db", type=Path, default=None, help="store (default: a temporary file)")
    args = ap.parse_args()

    backend = LlamaCppBackend(n_ctx=2048, max_parallel=16, n_threads=1)  # one thread: 2 shared cores
    task = ChainedSums()
    db = args.db or Path(tempfile.mkdtemp()) / "particle_filter.db"
    store = Store(db)
    started = time.perf_counter()
    searches = Sweep(SweepConfig(task="chained-sums", strategies=SEARCHES, n=4, ladder=[1, 2, 4],
                                 problems=args.problems, seed=args.seed), store, backend=backend).run()
    draw = Sweep(SweepConfig(task="chained-sums", strategies=[DRAW], n=32, problems=args.problems, seed=args.seed),
                 store, backend=backend).run()
    minutes = (time.perf_counter() - started) / 60
    curves = {c.label: c for run in (searches, draw) for c in run_curves(store, run.run_id, n_boot=2000)}
    pf = curves.pop("particle-filter")
    print(f"chained-sums ({task.terms} one-digit terms), {args.problems} problems, seed {args.seed}, "
          f"model {backend.model_id}, step scorer step-logprob; {minutes:.1f} min")
    print(f"{'strategy':<20} {'knob':>4} {'FLOPs/problem':>14} {'accuracy [95% CI]':>22}")
    summary = []
    for rung in pf.rungs:
        rows = [("particle-filter", rung)]
        for label, curve in curves.items():
            within = [r for r in curve.rungs if r.flops <= rung.flops * TOLERANCE]
            rows.append((label, max(within, key=lambda r: r.flops) if within else None))
        for label, r in rows:
            if r is None:
                print(f"{label:<20} {'-':>4} {'(none this cheap)':>14}")
                continue
            print(f"{label:<20} {r.k:>4} {r.flops:>14.3g} {100 * r.accuracy:>7.1f}% [{100 * r.lo:4.1f}, {100 * r.hi:4.1f}]")
        print()
        summary.append(f"{rung.flops:.2g} FLOPs: " + ", ".join(
            f"{label} {100 * r.accuracy:.0f}%" for label, r in rows if r is not None))
    print(f"runs {searches.run_id}, {draw.run_id} · db {db}")
    print("at the particle filter's compute · " + " · ".join(summary))


if __name__ == "__main__":
    main()

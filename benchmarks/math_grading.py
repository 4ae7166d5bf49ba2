"""The math task's grader on MATH-500: each solution's own final answer against the `answer` field.

For every line of ../shared/data/math500/test.jsonl, the answer is extracted from the reference
`solution` with MathTask.extract (the last `\\boxed{}`), and graded against the line's `answer`
field with the task's grader (Math-Verify in worker processes, time-bounded). Every pair should
agree: the answer field is the solution's boxed answer, so a disagreement is a bug in extraction
or grading. A shuffled control grades each extracted answer against another line's answer field,
which must almost never agree (MATH-500 repeats a few common answers such as 2 or 3, so a handful
of coincidental matches are expected; they are listed).

Throughput is answers graded per second of wall time on this machine (shared: its load average
is printed, and the workers' CPU time beside it), after the workers have
started (each imports SymPy once; that start-up time is printed separately), with the grader's
result cache empty: every pair is parsed and compared. When an extracted answer is spelled as its
reference, Math-Verify's own parse cache inside the worker serves the second parse: that is the
common case for a correct answer in a real sweep too. Pairs of plain integers are compared as
integers without a worker (the grader's fast path, exact; in Math-Verify an integer pair costs
about 1.6 ms of CPU against about 10 ms for the other MATH-500 answers, so it saves about a fifth
of the work here); `--math-verify-only` sends every pair to Math-Verify instead.

    python benchmarks/math_grading.py [PATH] [--workers 2]

Last line: `agreement: N/500 · X answers/s`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

from oomlab.tasks.math_grading import MathGrader
from oomlab.tasks.math_task import MathTask, extract_answer, tidy

DEFAULT_PATH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "math500" / "test.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--math-verify-only", action="store_true", help="no integer fast path")
    args = parser.parse_args()

    task = MathTask(path=args.path)  # the task's own reading of the file (answer field, tidied)
    problems = task.all_problems()
    records = [json.loads(line) for line in args.path.read_text(encoding="utf-8").splitlines() if line.strip()]
    extracted = [extract_answer(r["solution"]) for r in records]
    pairs = [(a, p.reference) for a, p in zip(extracted, problems, strict=True)]

    grader = MathGrader(workers=args.workers, integer_fast_path=not args.math_verify_only)
    started = time.perf_counter()
    grader.warm()
    startup = time.perf_counter() - started

    cpu0, t0 = grader.worker_cpu_seconds(), time.perf_counter()
    verdicts = grader.grade_many(pairs)
    seconds = time.perf_counter() - t0
    cpu = grader.worker_cpu_seconds() - cpu0
    integers = grader.stats.integers

    rng = random.Random(0)
    shifted = list(range(len(problems)))
    rng.shuffle(shifted)
    control = grader.grade_many([(a, problems[j].reference) for a, j in zip(extracted, shifted) if a is not None])
    grader.close()

    agree = sum(verdicts)
    for (answer, reference), ok, record in zip(pairs, verdicts, records):
        if not ok:
            print(f"disagree: {record.get('unique_id')}: extracted {answer!r} vs answer {reference!r}")
    matched = [(extracted[i], problems[j].reference) for (i, j), ok in zip(enumerate(shifted), control) if ok]
    print(f"extraction: {sum(a is not None for a in extracted)}/{len(records)} solutions have a final answer; "
          f"{sum(a == tidy(r['answer']) for a, r in zip(extracted, records))} spelled exactly as the answer field")
    print(f"shuffled control: {len(matched)}/{len(control)} accepted against another problem's answer "
          f"({', '.join(sorted({f'{a} = {b}' for a, b in matched})) or 'none'})")
    print(f"workers: {args.workers}, started in {startup:.1f} s; timeouts: {grader.stats.timeouts}, "
          f"errors: {grader.stats.errors}; {len(pairs)} pairs in {seconds:.2f} s, {integers} of them plain "
          f"integers compared without Math-Verify, {len(pairs) - integers} by Math-Verify")
    print(f"worker CPU: {cpu:.2f} s for the pairs ({len(pairs) / cpu:.0f} answers per CPU-second) while the "
          f"machine's load average was {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"agreement: {agree}/{len(pairs)} · {len(pairs) / seconds:.0f} answers/s")


if __name__ == "__main__":
    main()

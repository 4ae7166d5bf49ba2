"""Tool use: the model writes a program (or a calculator expression), oomlab runs it, the output is the answer.

Program of Thoughts (Chen et al. 2022, arXiv 2211.12588) and PAL (Gao et al. 2022,
arXiv 2211.10435), with self-consistency over programs (PoT §3, "PoT-SC"):

    for i in 1..n:
        program_i ~ M(FEW_SHOT + question)          # Python that prints the answer
        out_i     = run_python(program_i)           # bubblewrap sandbox: no network, no host files, limits
        a_i       = task.extract(out_i.stdout)      # None when the program failed
    return plurality(a_1..a_n)                      # ties broken with the seed

`mode="calculator"`: the model writes one arithmetic expression instead, evaluated by
`evaluate_arithmetic` (an AST walk, never `eval`). A program that fails, loops, allocates
10 GB, opens a socket or writes outside its temp dir gives that sample no answer and its error
in the trace (`trace["runs"][i]["error"]`); the strategy, and the sweep, go on.

Programs run in a bubblewrap sandbox (oomlab.sandbox); without bubblewrap the strategy refuses
in one line before it asks the model for anything. `tool:sandbox=unsafe-guard` runs them behind
an in-process guard instead, with no OS isolation: the option is part of the strategy's key, so
tables, plots and reports show it, its label says UNSAFE, and so does every trace
(`trace["sandbox"]`).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from oomlab.backends.base import Backend, GenRequest
from oomlab.calculator import evaluate_arithmetic
from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.sandbox import BUBBLEWRAP, SANDBOXES, UNSAFE_GUARD, run_python, sandbox_label
from oomlab.strategies.base import STRATEGIES, Attempt, Strategy, draw_seeds
from oomlab.strategies.revise import split_question, with_temperature

if TYPE_CHECKING:
    from oomlab.tasks.base import Task


def open_question(prompt: str) -> str:
    """The prompt's open question on one line, without its "Question:"/"Answer:" labels ("12 + 5 =" stays)."""
    _, question = split_question(prompt)
    question = " ".join(line.strip() for line in question.strip().splitlines())
    question = re.sub(r"^(?:Question|Q)\s*:\s*", "", question)
    return re.sub(r"\s*(?:Answer|A)\s*:$", "", question)


@dataclass(frozen=True)
class ToolRun:
    """One program (or expression) and what running it gave."""

    source: str
    output: str  # what the program printed (calculator: the value)
    error: str | None  # why it failed, for people; None when it ran cleanly
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "output": self.output[:2000], "error": self.error, "seconds": self.seconds}


@STRATEGIES.register("tool")
class Tool(Strategy):
    description: ClassVar[str] = (
        "program of thought: n Python programs run in a sandbox, plurality vote on their output (Chen et al. 2022)"
    )
    knob: ClassVar[str] = "n"
    knob_help: ClassVar[str] = "programs written and run (calculator mode: expressions); their results vote"

    PROGRAM_PROMPT: ClassVar[str] = (
        "# Write a Python program that prints the answer to the question.\n\n"
        "# Question: 23 + 19 * 2 =\nprint(23 + 19 * 2)\n\n"
        "# Question: Tom has 3 boxes of 12 eggs and breaks 5 eggs. How many eggs are left?\n"
        "eggs = 3 * 12\neggs = eggs - 5\nprint(eggs)\n\n"
        "# Question: 71 - 8 + 40 =\nprint(71 - 8 + 40)\n\n"
        "{question}\n"
    )
    CALCULATOR_PROMPT: ClassVar[str] = (
        "Write the arithmetic expression that computes the answer.\n\n"
        "Question: 23 + 19 * 2 =\nExpression: 23 + 19 * 2\n\n"
        "Question: Tom has 3 boxes of 12 eggs and breaks 5 eggs. How many eggs are left?\nExpression: 3 * 12 - 5\n\n"
        "Question: 71 - 8 + 40 =\nExpression: 71 - 8 + 40\n\n"
        "Question: {question}\nExpression:"
    )

    def __init__(self, mode: str = "python", temperature: float = 0.8, max_tokens: int = 128, timeout_s: float = 2.0,
                 memory_mb: int = 256, max_output_bytes: int = 16_000, sandbox: str = BUBBLEWRAP):
        if mode not in ("python", "calculator"):
            raise ConfigError(f"tool mode must be 'python' or 'calculator', got '{mode}'")
        if sandbox not in SANDBOXES:
            raise ConfigError(f"tool sandbox must be one of {', '.join(SANDBOXES)}, got '{sandbox}'")
        self.mode, self.temperature, self.max_tokens = mode, temperature, max_tokens
        self.timeout_s, self.memory_mb, self.max_output_bytes = timeout_s, memory_mb, max_output_bytes
        self.sandbox = sandbox
        self._sandbox_label: str | None = None

    def label(self) -> str:
        if self.sandbox == UNSAFE_GUARD and self.mode == "python":
            return f"{self.name} (UNSAFE sandbox: no OS isolation)"
        return super().label()

    def sandbox_label(self) -> str:
        """What runs the programs, checked once, on first use (showing a stored run needs no bwrap)."""
        if self._sandbox_label is None:
            self._sandbox_label = sandbox_label(self.sandbox)  # one-line ConfigError without bubblewrap
        return self._sandbox_label

    def request(self, problem: Problem, task: Task, n: int, seed: int) -> GenRequest:
        """n programs (or expressions) for the question; seeds nest, so rungs share samples in the cache."""
        question = open_question(task.prompt(problem))
        if self.mode == "calculator":
            prompt = self.CALCULATOR_PROMPT.format(question=question)
            params = with_temperature(task.sampling(), self.temperature, max_tokens=48, stop=("\n",))
        else:
            prompt = self.PROGRAM_PROMPT.format(question=f"# Question: {question}")
            params = with_temperature(task.sampling(), self.temperature, max_tokens=self.max_tokens,
                                      stop=("\n\n", "\n# Question"))
        return GenRequest(prompt, params, draw_seeds(seed, n))

    def run_program(self, source: str) -> ToolRun:
        """Run a model-written program in the sandbox; never raises for what the program does."""
        self.sandbox_label()
        result = run_python(source, timeout_s=self.timeout_s, memory_mb=self.memory_mb,
                            max_output_bytes=self.max_output_bytes, sandbox=self.sandbox)
        return ToolRun(source, result.stdout, result.error, round(result.seconds, 3))

    def run_expression(self, source: str) -> ToolRun:
        """Evaluate a model-written arithmetic expression; a refused one is an error, not an exception."""
        try:
            value = evaluate_arithmetic(source)
        except ValueError as e:
            return ToolRun(source, "", str(e))
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return ToolRun(source, str(value), None)

    def solve(self, problem: Problem, task: Task, backend: Backend, budget: int, seed: int = 0) -> Attempt:
        sandbox = self.sandbox_label() if self.mode == "python" else None  # refuse before spending tokens
        generations = backend.generate(self.request(problem, task, budget, seed))
        run = self.run_expression if self.mode == "calculator" else self.run_program
        runs = [run(g.text.strip() if self.mode == "calculator" else g.text) for g in generations]
        # a failed run gives no answer, even if it printed something first (it may be half an answer)
        answers = [task.extract(r.output) if r.error is None else None for r in runs]
        counts = Counter(a for a in answers if a is not None)
        answer = None
        if counts:
            top = max(counts.values())
            answer = random.Random(seed).choice([a for a, c in counts.items() if c == top])
        trace = {"mode": self.mode, "answers": answers, "runs": [r.as_dict() for r in runs],
                 "errors": sum(r.error is not None for r in runs)}
        if sandbox is not None:
            trace["sandbox"] = sandbox
        return Attempt(answer, task.check(answer, problem), tuple(generations), trace)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "temperature": self.temperature, "max_tokens": self.max_tokens,
                "timeout_s": self.timeout_s, "memory_mb": self.memory_mb, "sandbox": self.sandbox}

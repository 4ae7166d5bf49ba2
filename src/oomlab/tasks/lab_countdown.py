"""Small Countdown for the lab: reach a target from a few digits, a chain evaluated left to right.

    direct:  2579>42=9-2*5+7                     9-2 = 7, 7*5 = 35, 35+7 = 42
    cot:     2579>42=9-2=07*5=35+7=42;9-2*5+7    (each step's running value, then ';' and the chain)

The prompt is the multiset of numbers (digits 1-9, sorted, written without separators), '>' and
the target (zero-padded to two digits). An answer is a chain `a op b op c ...` of some of the
given numbers, each used at most once (a digit given twice may be used twice), with + - * applied
strictly left to right (no precedence, no parentheses): `9-2*5` is (9-2)*5 = 35. Any chain that
reaches the target counts, not only the one the generator wrote; a single number is a chain too,
but no problem's target is one of its numbers.

Generator: `level` digits uniformly from 1-9, then a random order of all of them and random
operators, redrawn until every running value stays in 0-99; the target is the chain's value and
the chain is the reference (one solution, for display). `check` reads the problem's own prompt
(numbers and target), never `problem.reference`: verifying an answer is a few additions, finding
one is a search. That asymmetry is what best-of-n with the `check` scorer harvests, deployably:
the setting of Brown et al. 2024 ("Large Language Monkeys", arXiv 2407.21787), where unit tests
or a proof checker select among samples without a reference answer.

Difficulty level = how many numbers are given. Held-out problems (numbers and target, whatever
chain a model writes): see oomlab.lab.problems.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any, ClassVar

from oomlab.errors import ConfigError
from oomlab.lab.problems import EOS, Example, LabTask
from oomlab.problem import Problem
from oomlab.tasks.base import TASKS

OPS = "+-*"
MAX_VALUE = 99  # every running value of a generated chain, and so every target, lies in 0..99
_APPLY = {"+": lambda x, a: x + a, "-": lambda x, a: x - a, "*": lambda x, a: x * a}
_CHAIN = re.compile(r"[1-9](?:[-+*][1-9])*")
_PROMPT = re.compile(r"([1-9]+)>(\d+)=")


def evaluate(chain: str) -> int:
    """The value of a chain of digits and + - *, strictly left to right."""
    x = int(chain[0])
    for op, a in zip(chain[1::2], chain[2::2]):
        x = _APPLY[op](x, int(a))
    return x


def check_chain(chain: str | None, numbers: str, target: int) -> bool:
    """True when `chain` is digits joined by + - *, uses each given digit at most as often as given,
    and evaluates left to right to `target`."""
    if chain is None or not _CHAIN.fullmatch(chain):
        return False
    return Counter(chain[0::2]) <= Counter(numbers) and evaluate(chain) == target


@TASKS.register("lab-countdown")
class LabCountdownTask(LabTask):
    description: ClassVar[str] = ("lab: reach a target from 3-5 digits with + - * left to right (any valid chain "
                                  "counts); direct answer or a scratchpad of running values")
    vocab: ClassVar[str] = EOS + "0123456789+-*>=;"
    reference_free_check: ClassVar[bool] = True

    def __init__(self, format: str = "cot", min_numbers: int = 3, max_numbers: int = 5, ops: str = OPS,
                 ordered: bool = False, split: str = "eval") -> None:
        super().__init__(format, split)
        if not 2 <= min_numbers <= max_numbers <= 6:
            raise ConfigError("lab-countdown: need 2 <= min_numbers <= max_numbers <= 6")
        if not ops or any(o not in OPS for o in ops) or len(set(ops)) != len(ops):
            raise ConfigError(f"lab-countdown: ops must be drawn from '{OPS}', got {ops!r}")
        self.min_numbers, self.max_numbers, self.ops, self.ordered = min_numbers, max_numbers, ops, ordered
        self.levels = tuple(range(min_numbers, max_numbers + 1))

    def draw(self, rng: random.Random, level: int) -> Example:
        """`level` digits and a target some chain of all of them reaches (the chain: the reference)."""
        while True:
            numbers = [rng.randint(1, 9) for _ in range(level)]
            order = list(numbers) if self.ordered else rng.sample(numbers, level)
            ops = [rng.choice(self.ops) for _ in range(level - 1)]
            values, x = [], order[0]
            for op, a in zip(ops, order[1:]):
                x = _APPLY[op](x, a)
                values.append(x)
            if all(0 <= v <= MAX_VALUE for v in values) and x not in numbers:
                break
        digits = "".join(map(str, numbers if self.ordered else sorted(numbers)))
        key = f"{digits}>{x:02d}"
        chain = str(order[0]) + "".join(f"{op}{a}" for op, a in zip(ops, order[1:]))
        if self.format == "direct":
            answer = chain
        else:
            steps = str(order[0]) + "".join(f"{op}{a}={v:02d}" for op, a, v in zip(ops, order[1:], values))
            answer = f"{steps};{chain}"
        return Example(key=key, prompt=key + "=", answer=answer + EOS, level=level, reference=chain)

    def extract(self, text: str) -> str | None:
        """The chain (cot: after the last ';'), when it is digits joined by + - *; else None."""
        line = self.final_text(text)
        return line if line is not None and _CHAIN.fullmatch(line) else None

    def check(self, answer: str | None, problem: Problem) -> bool:
        """Any valid chain reaching the target, read from the problem's prompt; never reads the reference."""
        m = _PROMPT.fullmatch(problem.inputs["prompt"])
        if m is None:
            raise ConfigError(f"lab-countdown: {problem.inputs['prompt']!r} is not a lab-countdown prompt")
        if self.ordered and (answer is None or answer[0::2] != m.group(1)):
            return False
        return check_chain(answer, m.group(1), int(m.group(2)))

    def max_answer_tokens(self, level: int | None = None) -> int:
        k = self.max_numbers if level is None else level
        chain = 2 * k - 1
        return chain + 1 if self.format == "direct" else 1 + 5 * (k - 1) + 1 + chain + 1

    def max_prompt_tokens(self, level: int | None = None) -> int:
        return (self.max_numbers if level is None else level) + 4

    def config(self) -> dict[str, Any]:
        return {**super().config(), "min_numbers": self.min_numbers, "max_numbers": self.max_numbers, "ops": self.ops,
                "ordered": self.ordered}

"""Integer arithmetic at graded difficulty: generated, seeded, exactly checkable.

The prompt is bare solved equations ("7 + 5 = 12" lines, then "3 + 8 =")
because that is the shape a small *base* model continues; the format and
the levels were chosen by measuring Gemma 3 270M (Q4_K_M, llama.cpp, greedy)
with benchmarks/arithmetic_formats.py.

Prompt formats, 4 shots, 40 problems per level (seed 1):

    level  spec              bare  bare_space  question ("Q: What is ...?\nA:")
    1      1 digit, 2 terms, +        80%   80%   22%
    2      1 digit, 2 terms, + -      62%   60%    8%
    3      1 digit, 3 terms, +        12%   12%   12%
    4      1 digit, 3 terms, + -      10%   10%    5%
    5      2 digits, 3 terms, + - *    0%    0%    0%

"bare" and "bare_space" (prompt ending "= ") tokenise alike (" =", " ", digits),
hence the tie. With 100 problems per level (seed 3) "bare" gives
84 / 68 / 15 / 8 / 0%, and the default mix 35% (200 problems; 31% on 100,
seed 1). Shots (100 per level, seed 2): 3 -> 68/58/17/7/0, 4 -> 72/68/15/4/0,
6 -> 68/51/12/5/0, 8 -> 68/57/13/5/1. Other specs measured (4 shots, 80-100
problems): one-digit products 82-84% (easier than sums, so not a level),
1 digit 4 terms + 11%, 2 digits 2 terms + 6-11%, 2 digits 3 terms + 1%.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from oomlab.backends.base import SamplingParams
from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.tasks.base import TASKS, Task

OPERATORS = "+-*"
SHOTS = 4  # solved lines before the question (3, 4, 6 and 8 measured: 4 did best)


@dataclass(frozen=True)
class Spec:
    """What one problem looks like: digits per operand, operand count, operators to draw from."""

    digits: int
    operands: int
    ops: str

    @property
    def tag(self) -> str:
        names = {"+": "a", "-": "s", "*": "m"}
        return f"{self.digits}d{self.operands}o-{''.join(names[o] for o in self.ops)}"


# Difficulty levels, easiest first; digits and operand counts never decrease.
LEVELS: dict[int, Spec] = {
    1: Spec(digits=1, operands=2, ops="+"),
    2: Spec(digits=1, operands=2, ops="+-"),
    3: Spec(digits=1, operands=3, ops="+"),
    4: Spec(digits=1, operands=3, ops="+-"),
    5: Spec(digits=2, operands=3, ops="+-*"),
}


def evaluate(numbers: list[int], ops: list[str]) -> int:
    """The value with the usual precedence: products first, then left-to-right sums."""
    terms, signs = [numbers[0]], []
    for op, number in zip(ops, numbers[1:]):
        if op == "*":
            terms[-1] *= number
        else:
            terms.append(number)
            signs.append(op)
    value = terms[0]
    for sign, term in zip(signs, terms[1:]):
        value = value + term if sign == "+" else value - term
    return value


def draw(rng: random.Random, spec: Spec) -> tuple[str, int]:
    """One expression of `spec` and its value; one-digit operands include 0."""
    low = 0 if spec.digits == 1 else 10 ** (spec.digits - 1)
    numbers = [rng.randint(low, 10**spec.digits - 1) for _ in range(spec.operands)]
    ops = [rng.choice(spec.ops) for _ in range(spec.operands - 1)]
    text = str(numbers[0]) + "".join(f" {op} {n}" for op, n in zip(ops, numbers[1:]))
    return text, evaluate(numbers, ops)


def example_lines(spec: Spec, shots: int = SHOTS) -> list[tuple[str, int]]:
    """Fixed solved examples for a spec (one spare, swapped in when a question repeats one)."""
    rng = random.Random(f"arithmetic-fewshot:{spec.tag}")
    return [draw(rng, spec) for _ in range(shots + 1)]


FIRST_INTEGER = re.compile(r"-?\d+")


@TASKS.register("arithmetic")
class ArithmeticTask(Task):
    """`a + b * c = ` completed by the model; answers are integers, checked exactly."""

    description: ClassVar[str] = "generated integer arithmetic, difficulty 1-5 (default: a mix)"

    def __init__(
        self,
        difficulty: int | None = None,
        digits: int | None = None,
        operands: int | None = None,
        ops: str | None = None,
        shots: int = SHOTS,
    ) -> None:
        custom = (digits, operands, ops) != (None, None, None)
        if difficulty is not None and custom:
            raise ConfigError("arithmetic: give either difficulty or digits/operands/ops, not both")
        if difficulty is not None and difficulty not in LEVELS:
            raise ConfigError(f"arithmetic difficulty must be one of {sorted(LEVELS)}, got {difficulty}")
        if not 0 <= shots <= 32:
            raise ConfigError(f"arithmetic shots must be between 0 and 32, got {shots}")
        self.difficulty, self.digits, self.operands, self.ops, self.shots = difficulty, digits, operands, ops, shots
        if custom:
            spec = Spec(
                digits=1 if digits is None else digits,
                operands=2 if operands is None else operands,
                ops="+" if ops is None else ops,
            )
            if not 1 <= spec.digits <= 9 or not 2 <= spec.operands <= 8:
                raise ConfigError("arithmetic: digits must be 1-9 and operands 2-8")
            if not spec.ops or any(op not in OPERATORS for op in spec.ops):
                raise ConfigError(f"arithmetic ops must be drawn from {OPERATORS!r}, got {spec.ops!r}")
            self.specs: dict[int | str, Spec] = {spec.tag: spec}
            self.tag = spec.tag
        elif difficulty is not None:
            self.specs = {difficulty: LEVELS[difficulty]}
            self.tag = f"L{difficulty}"
        else:
            self.specs = dict(LEVELS)
            self.tag = "mix"

    def problems(self, n: int, seed: int = 0) -> list[Problem]:
        """n problems; a mix cycles through the levels so each is equally represented."""
        rng = random.Random(f"arithmetic:{self.tag}:{seed}")
        levels = list(self.specs.items())
        out = []
        for i in range(n):
            level, spec = levels[i % len(levels)]
            expression, value = draw(rng, spec)
            metadata = {
                "difficulty": level,
                "digits": spec.digits,
                "operands": spec.operands,
                "ops": spec.ops,
            }
            out.append(
                Problem(
                    id=f"arith-{self.tag}-{seed}-{i}",
                    inputs={"expression": expression},
                    reference=str(value),
                    metadata=metadata,
                )
            )
        return out

    def prompt(self, problem: Problem) -> str:
        """Bare solved equations, then the question's own left-hand side."""
        m = problem.metadata
        spec = Spec(digits=m["digits"], operands=m["operands"], ops=m["ops"])
        expression = problem.inputs["expression"]
        examples = [(e, v) for e, v in example_lines(spec, self.shots) if e != expression][: self.shots]
        return "".join(f"{e} = {v}\n" for e, v in examples) + f"{expression} ="

    def extract(self, text: str) -> str | None:
        """The first (signed) integer: the model's answer comes straight after '='."""
        match = FIRST_INTEGER.search(text)
        return str(int(match.group())) if match else None

    def sampling(self) -> SamplingParams:
        """Stop at the line's end; room for the longest possible answer and a sign."""
        longest = max(len(str(10 ** (s.digits * s.operands))) for s in self.specs.values())
        return SamplingParams(max_tokens=max(8, longest + 2), stop=("\n",))

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "difficulty": self.difficulty,
            "digits": self.digits,
            "operands": self.operands,
            "ops": self.ops,
            "shots": self.shots,
        }

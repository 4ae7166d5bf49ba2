"""Game of 24: use four numbers from 1..13, each exactly once, with + - * / to make 24.

The search benchmark of Yao et al. 2023 ("Tree of Thoughts", §4.1): division is real
division, computed exactly here with fractions, so `(1 + 8 / 4) * 8` and `8 / (3 - 8 / 3)`
are valid. Of the 1820 multisets of four numbers from 1..13, 1362 can make 24; a seed
fixes an order over them, and `problems(n, seed)` returns the first n, never repeating one.

Difficulty (1 easy .. 3 hard) comes from the number of distinct solutions, counted up to
commutativity and associativity: 3 when there is exactly one (396 of the 1362 solvable
sets), 2 for two or three (528), 1 for four or more (438). It is a stand-in
for the human solve-time ranking (4nums.com) that Yao et al. sorted by; their hard test
set was ranks 901-1000.

Prompt and answer format follow Yao et al.'s standard ("direct") and chain-of-thought
("steps") prompts, on the same five example puzzles: `Input: 4 4 6 8` then
`Answer: (4 + 8) * (6 - 4) = 24`, with `Steps:` lines `4 + 8 = 12 (left: 4 6 12)` before
the answer in the steps style. Extraction and checking are Countdown's (`countdown.py`),
with every number required exactly once.
"""

from __future__ import annotations

import ast
import functools
import itertools
import random
from collections.abc import Iterator, Sequence
from fractions import Fraction
from typing import Any

from oomlab.backends.base import SamplingParams
from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.tasks.base import TASKS, Task
from oomlab.tasks.countdown import (
    ATOM,
    combinations,
    Item,
    check_expression,
    extract_expression,
    parse_expression,
    solve_countdown,
)

TARGET = 24
SOLVABLE_SETS = 1362  # of the 1820 multisets of four numbers from 1..13 (tested)
# Difficulty by `solution_count`, splitting the 1362 solvable sets about in thirds:
# 1 when >= EASY_MIN distinct solutions, 2 when >= MEDIUM_MIN, else 3.
EASY_MIN, MEDIUM_MIN = 4, 2


def solve_game24(numbers: Sequence[int]) -> str | None:
    """One expression using every number exactly once that makes 24, or None.

    Prefers one whose steps are all positive whole numbers (easier to read).
    """
    return solve_countdown(numbers, TARGET, use_all=True, integer_steps=True) or solve_countdown(
        numbers, TARGET, use_all=True
    )


def _all_expressions(items: tuple[Item, ...]) -> Iterator[Item]:
    """Every value/expression that uses all the items (no pruning)."""
    if len(items) == 1:
        yield items[0]
        return
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            rest = items[:i] + items[i + 1 : j] + items[j + 1 :]
            for combined in combinations(items[i], items[j], integer_steps=False):
                yield from _all_expressions((*rest, combined))


def _canonical(node: ast.expr) -> str:
    """A text that is equal for expressions equal up to commutativity and associativity."""
    if isinstance(node, ast.Constant):
        return str(node.value)
    assert isinstance(node, ast.BinOp)
    additive = isinstance(node.op, (ast.Add, ast.Sub))
    plus, minus = ("+", "-") if additive else ("*", "/")
    kind = (ast.Add, ast.Sub) if additive else (ast.Mult, ast.Div)
    positive: list[str] = []
    negative: list[str] = []

    def collect(n: ast.expr, sign: bool) -> None:
        if isinstance(n, ast.BinOp) and isinstance(n.op, kind):
            collect(n.left, sign)
            collect(n.right, sign if isinstance(n.op, (ast.Add, ast.Mult)) else not sign)
        else:
            (positive if sign else negative).append(_canonical(n))

    collect(node, True)
    text = plus.join(sorted(positive))
    if negative:
        text += minus + minus.join(sorted(negative))
    return f"({text})"


@functools.cache
def solution_count(numbers: tuple[int, ...]) -> int:
    """Distinct expressions making 24 from `numbers` (sorted), up to commutativity and associativity."""
    items = tuple((Fraction(n), str(n), ATOM) for n in numbers)
    texts = {text for value, text, _ in _all_expressions(items) if value == TARGET}
    return len({_canonical(parse_expression(text)) for text in texts})  # type: ignore[arg-type]


def difficulty(numbers: Sequence[int]) -> int:
    """1 (many ways to 24) .. 3 (few)."""
    count = solution_count(tuple(sorted(numbers)))
    return 1 if count >= EASY_MIN else 2 if count >= MEDIUM_MIN else 3


# Yao et al.'s five example puzzles, answered in their two formats.
_EXAMPLES = [
    ((4, 4, 6, 8), ["4 + 8 = 12 (left: 4 6 12)", "6 - 4 = 2 (left: 2 12)", "2 * 12 = 24 (left: 24)"],
     "(6 - 4) * (4 + 8)"),
    ((2, 9, 10, 12), ["12 * 2 = 24 (left: 9 10 24)", "10 - 9 = 1 (left: 1 24)", "24 * 1 = 24 (left: 24)"],
     "12 * 2 * (10 - 9)"),
    ((4, 9, 10, 13), ["13 - 10 = 3 (left: 3 4 9)", "9 - 3 = 6 (left: 4 6)", "4 * 6 = 24 (left: 24)"],
     "4 * (9 - (13 - 10))"),
    ((1, 4, 8, 8), ["8 / 4 = 2 (left: 1 2 8)", "1 + 2 = 3 (left: 3 8)", "3 * 8 = 24 (left: 24)"],
     "(1 + 8 / 4) * 8"),
    ((5, 5, 5, 9), ["5 + 5 = 10 (left: 5 9 10)", "10 + 5 = 15 (left: 9 15)", "15 + 9 = 24 (left: 24)"],
     "5 + 5 + 5 + 9"),
]  # fmt: skip
_INSTRUCTION = "Use the numbers and basic arithmetic operations (+ - * /) to obtain 24. Use each number exactly once."
_STEPS_RULE = " In each step, combine two of the numbers left into a new number."


@TASKS.register("game24")
class Game24Task(Task):
    """Game of 24 (Yao et al. 2023): generated, seeded, every instance solvable."""

    description = "Game of 24: make 24 from four numbers 1-13, each used exactly once, with + - * /"
    reference_free_check = True  # check() reads the numbers (the target is 24), never the reference

    def __init__(self, style: str = "direct"):
        if style not in ("direct", "steps"):
            raise ConfigError(f"game24 style must be 'direct' or 'steps', got '{style}'")
        self.style = style

    def problems(self, n: int, seed: int = 0) -> list[Problem]:
        """The first n solvable sets in the seed's order (a longer list starts with a shorter one)."""
        if n > SOLVABLE_SETS:
            raise ConfigError(f"game24 has only {SOLVABLE_SETS} distinct solvable problems; asked for {n}")
        candidates = list(itertools.combinations_with_replacement(range(1, 14), 4))
        random.Random(f"game24:{seed}").shuffle(candidates)
        problems = []
        for numbers in candidates:
            if len(problems) == n:
                break
            solution = solve_game24(numbers)
            if solution is None:
                continue
            problems.append(
                Problem(
                    id=f"game24-{'-'.join(map(str, numbers))}",
                    inputs={"numbers": list(numbers), "target": TARGET},
                    reference=solution,
                    metadata={"difficulty": difficulty(numbers), "n_solutions": solution_count(numbers)},
                )
            )
        return problems

    def prompt(self, problem: Problem) -> str:
        steps = self.style == "steps"
        blocks = [_INSTRUCTION + (_STEPS_RULE if steps else "")]
        for numbers, lines, answer in _EXAMPLES:
            body = ["Steps:", *lines] if steps else []
            blocks.append("\n".join([f"Input: {' '.join(map(str, numbers))}", *body, f"Answer: {answer} = 24"]))
        opening = "Steps:\n" if steps else "Answer:"
        blocks.append(f"Input: {' '.join(map(str, problem.inputs['numbers']))}\n{opening}")
        return "\n\n".join(blocks)

    def extract(self, text: str) -> str | None:
        return extract_expression(text)

    def check(self, answer: str | None, problem: Problem) -> bool:
        if answer is None:
            return False
        return check_expression(answer, problem.inputs["numbers"], TARGET, use_all=True)

    def sampling(self) -> SamplingParams:
        if self.style == "steps":
            return SamplingParams(max_tokens=160, stop=("\n\n", "\nInput:"))
        return SamplingParams(max_tokens=48, stop=("\n",))

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "style": self.style}


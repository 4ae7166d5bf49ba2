"""Countdown: reach a target from given numbers with + - * / and parentheses.

Rules used here (the numbers round of the TV game, with its arithmetic made exact):
- each given number may be used at most once (a number given twice may be used twice),
  and not every number has to be used;
- only + - * / and parentheses: no unary minus, no joining digits, no other operators;
- by default any exact rational intermediate is allowed (`(5 - 5 / 5) * 6` is fine) and
  only the final value must equal the target; with `integer_steps=True` every step of the
  expression as written must give a positive whole number, as on the TV show.

Instances: `n_numbers` numbers (default 4; a list cycles, e.g. (3, 4, 5)) drawn from
`number_range` (1..25) and a target from `target_range` (10..100), never one of the
numbers; difficulty is the number count. They are generated from a seed, distinct, and
only solvable ones are kept: a brute-force solver (`solve_countdown`) proves each one and
supplies `problem.reference`, one solution, for display. `check` validates whatever
expression the model wrote, not just its value.

Answer format (built into the few-shot prompt): a line `Answer: <expression> = <target>`.
`extract` takes the text after the last `Answer:` (or, when the completion has no marker
because the prompt ended with it, the first non-empty line) and drops everything from `=`.

Game of 24 (`game24.py`) is the same puzzle with four numbers, target 24 and every number
used exactly once; it reuses the solver and checker defined here.
"""

from __future__ import annotations

import ast
import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from fractions import Fraction
from typing import Any

from oomlab.backends.base import SamplingParams
from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.tasks.base import TASKS, Task

MAX_ANSWER_CHARS = 300
_MAX_DRAWS = 20_000

# ---------------------------------------------------------------- the solver

# An item in the search: (exact value, expression text, precedence of its top operator).
Item = tuple[Fraction, str, int]
ATOM, MUL, ADD = 3, 2, 1


def _wrap(item: Item, needed: int) -> str:
    return f"({item[1]})" if item[2] < needed else item[1]


def combinations(a: Item, b: Item, integer_steps: bool) -> Iterator[Item]:
    """Every value one operation makes of a and b (each commutative one once)."""
    (x, _, _), (y, _, _) = a, b
    yield x + y, f"{a[1]} + {b[1]}", ADD
    yield x * y, f"{_wrap(a, MUL)} * {_wrap(b, MUL)}", MUL
    for (p, p_item), (q, q_item) in (((x, a), (y, b)), ((y, b), (x, a))):
        if not integer_steps or p > q:
            yield p - q, f"{p_item[1]} - {_wrap(q_item, MUL)}", ADD
        if q != 0 and (not integer_steps or p % q == 0):
            yield p / q, f"{_wrap(p_item, MUL)} / {_wrap(q_item, ATOM)}", MUL


def _search(
    items: tuple[Item, ...], target: Fraction, use_all: bool, integer_steps: bool, failed: set
) -> str | None:
    if len(items) == 1 or not use_all:
        for value, text, _ in items:
            if value == target:
                return text
    if len(items) == 1:
        return None
    key = tuple(sorted(item[0] for item in items))
    if key in failed:  # the same multiset of values reached by another route
        return None
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            rest = items[:i] + items[i + 1 : j] + items[j + 1 :]
            for combined in combinations(items[i], items[j], integer_steps):
                found = _search((*rest, combined), target, use_all, integer_steps, failed)
                if found is not None:
                    return found
    failed.add(key)
    return None


def solve_countdown(
    numbers: Sequence[int], target: int, *, use_all: bool = False, integer_steps: bool = False
) -> str | None:
    """One expression reaching `target` from `numbers` (each at most once; all once if use_all), or None."""
    items = tuple((Fraction(n), str(n), ATOM) for n in sorted(numbers))
    return _search(items, Fraction(target), use_all, integer_steps, set())


# ---------------------------------------------------------------- the checker

_SPELLINGS = {"×": "*", "·": "*", "∗": "*", "÷": "/", "−": "-", "–": "-", "\\times": "*", "\\div": "/"}
_TIMES_X = re.compile(r"(?<=[\d)\s])[xX](?=[\s\d(])")  # "3 x 8" means 3 * 8


def normalise_expression(text: str) -> str:
    """The expression part of an answer line, in Python's operator spelling, without `= target`."""
    text = text.split("=", 1)[0]
    for spelling, python in _SPELLINGS.items():
        text = text.replace(spelling, python)
    text = _TIMES_X.sub("*", text)
    return text.strip().strip("`$*").strip().rstrip(".").strip()


def parse_expression(expr: str) -> ast.expr | None:
    """The syntax tree of an expression of whole numbers, + - * / and parentheses; None otherwise."""
    if len(expr) > MAX_ANSWER_CHARS:
        return None
    try:
        tree = ast.parse(normalise_expression(expr), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            continue
        if isinstance(node, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            continue
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 0:
            continue
        return None
    return tree


def _value(node: ast.expr, integer_steps: bool) -> Fraction | None:
    """Exact value of a parsed expression; None on division by zero or a disallowed step."""
    if isinstance(node, ast.Constant):
        return Fraction(node.value)
    assert isinstance(node, ast.BinOp)
    left, right = _value(node.left, integer_steps), _value(node.right, integer_steps)
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Add):
        result = left + right
    elif isinstance(node.op, ast.Sub):
        result = left - right
    elif isinstance(node.op, ast.Mult):
        result = left * right
    elif right == 0:
        return None
    else:
        result = left / right
    if integer_steps and (result.denominator != 1 or result <= 0):
        return None
    return result


def check_expression(
    expr: str, numbers: Sequence[int], target: int, *, use_all: bool = False, integer_steps: bool = False
) -> bool:
    """True when `expr` uses only the given numbers (each at most once; exactly once if use_all),
    only + - * / and parentheses, and evaluates exactly to `target`."""
    tree = parse_expression(expr)
    if tree is None:
        return False
    used = Counter(node.value for node in ast.walk(tree) if isinstance(node, ast.Constant))
    given = Counter(numbers)
    if not (used == given if use_all else used <= given):
        return False
    return _value(tree, integer_steps) == target


_ANSWER_MARKER = re.compile(r"answer\s*:", re.IGNORECASE)


def extract_expression(text: str) -> str | None:
    """The candidate expression in a completion (see the module docstring for the format)."""
    matches = list(_ANSWER_MARKER.finditer(text))
    if matches:
        candidate = text[matches[-1].end() :].strip().split("\n", 1)[0]
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            return None
        candidate = lines[0]
    expr = normalise_expression(candidate)
    if not any(c.isdigit() for c in expr):
        return None
    tree = parse_expression(expr)
    return ast.unparse(tree) if tree is not None else expr  # canonical spacing for voting


# ---------------------------------------------------------------- the task

_INSTRUCTION = (
    "Combine some of the numbers with + - * / and parentheses to reach the target. "
    "Each number may be used at most once."
)
_INTEGER_RULE = " Every step must give a positive whole number."
# (numbers, target, steps, answer); each answer is valid under both rule sets (tested).
_EXAMPLES = [
    ((2, 5, 9, 14), 37, ["2 * 14 = 28 (left: 5 9 28)", "28 + 9 = 37 (left: 5 37)"], "2 * 14 + 9"),
    ((4, 6, 11, 20), 90, ["11 + 4 = 15 (left: 6 15 20)", "15 * 6 = 90 (left: 20 90)"], "(11 + 4) * 6"),
    (
        (3, 8, 15, 21),
        71,
        ["21 / 3 = 7 (left: 7 8 15)", "7 * 8 = 56 (left: 15 56)", "56 + 15 = 71 (left: 71)"],
        "21 / 3 * 8 + 15",
    ),
    (
        (5, 7, 10, 24),
        63,
        ["24 - 10 = 14 (left: 5 7 14)", "14 * 5 = 70 (left: 7 70)", "70 - 7 = 63 (left: 63)"],
        "(24 - 10) * 5 - 7",
    ),
]


@TASKS.register("countdown")
class CountdownTask(Task):
    """Countdown numbers puzzles: generated, seeded, every instance solvable."""

    description = "Countdown: reach a target from given numbers with + - * / (each number at most once)"
    reference_free_check = True  # check() reads the numbers and the target, never the reference

    def __init__(
        self,
        n_numbers: int | Sequence[int] = 4,
        number_range: Sequence[int] = (1, 25),
        target_range: Sequence[int] = (10, 100),
        integer_steps: bool = False,
        style: str = "direct",
    ):
        sizes = (n_numbers,) if isinstance(n_numbers, int) else tuple(n_numbers)
        if not sizes or any(not 2 <= k <= 7 for k in sizes):
            raise ConfigError(f"countdown n_numbers must be between 2 and 7, got {n_numbers}")
        lo, hi = number_range
        t_lo, t_hi = target_range
        if not 1 <= lo <= hi or not 1 <= t_lo <= t_hi:
            raise ConfigError(f"countdown ranges must be 1 <= low <= high: {number_range}, {target_range}")
        if style not in ("direct", "steps"):
            raise ConfigError(f"countdown style must be 'direct' or 'steps', got '{style}'")
        self.sizes, self.number_range, self.target_range = sizes, (lo, hi), (t_lo, t_hi)
        self.integer_steps, self.style = integer_steps, style

    def problems(self, n: int, seed: int = 0) -> list[Problem]:
        """n distinct solvable instances; problem i cycles through the configured number counts.

        A longer list from the same seed starts with the shorter one.
        """
        rng = random.Random(f"countdown:{seed}")
        seen: set[tuple[tuple[int, ...], int]] = set()  # used, or proved unsolvable
        problems = []
        for i in range(n):
            size = self.sizes[i % len(self.sizes)]
            for _ in range(_MAX_DRAWS):
                numbers = tuple(sorted(rng.randint(*self.number_range) for _ in range(size)))
                target = rng.randint(*self.target_range)
                if target in numbers or (numbers, target) in seen:
                    continue
                # a reference with whole-number steps reads best; fall back to fractions
                solution = solve_countdown(numbers, target, integer_steps=True)
                if solution is None and not self.integer_steps:
                    solution = solve_countdown(numbers, target)
                if solution is not None:
                    break
                seen.add((numbers, target))
            else:
                raise ConfigError("countdown: no new solvable instance found; widen number_range or target_range")
            seen.add((numbers, target))
            problems.append(
                Problem(
                    id=f"countdown-{'-'.join(map(str, numbers))}-to-{target}",
                    inputs={"numbers": list(numbers), "target": target},
                    reference=solution,
                    metadata={"difficulty": size, "n_numbers": size, "integer_steps": self.integer_steps},
                )
            )
        return problems

    def prompt(self, problem: Problem) -> str:
        header = _INSTRUCTION + (_INTEGER_RULE if self.integer_steps else "")
        blocks = [header]
        for numbers, target, steps, answer in _EXAMPLES:
            blocks.append(self._block(numbers, target) + self._solution(steps, answer, target))
        blocks.append(self._block(problem.inputs["numbers"], problem.inputs["target"]) + self._opening())
        return "\n\n".join(blocks)

    def _block(self, numbers: Sequence[int], target: int) -> str:
        return f"Numbers: {' '.join(map(str, numbers))}\nTarget: {target}\n"

    def _opening(self) -> str:
        return "Steps:\n" if self.style == "steps" else "Answer:"

    def _solution(self, steps: Sequence[str], answer: str, target: int) -> str:
        lines = ["Steps:", *steps] if self.style == "steps" else []
        return "\n".join([*lines, f"Answer: {answer} = {target}"])

    def extract(self, text: str) -> str | None:
        return extract_expression(text)

    def check(self, answer: str | None, problem: Problem) -> bool:
        if answer is None:
            return False
        inputs = problem.inputs
        return check_expression(answer, inputs["numbers"], inputs["target"], integer_steps=self.integer_steps)

    def sampling(self) -> SamplingParams:
        if self.style == "steps":
            return SamplingParams(max_tokens=48 * max(self.sizes), stop=("\n\n", "\nNumbers:"))
        return SamplingParams(max_tokens=48, stop=("\n",))

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_numbers": list(self.sizes),
            "number_range": list(self.number_range),
            "target_range": list(self.target_range),
            "integer_steps": self.integer_steps,
            "style": self.style,
        }

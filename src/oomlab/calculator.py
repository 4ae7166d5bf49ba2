"""A calculator tool a model may call: arithmetic only, evaluated by walking the syntax tree.

Nothing is ever passed to `eval`: the expression is parsed with `ast` and only numbers,
`+ - * / // % **`, unary minus/plus and parentheses are evaluated; any other syntax
(names, calls, attributes, subscripts, comparisons, ...) is refused. Results keep
Python's semantics (`7 / 2 == 3.5`, `7 // 2 == 3`, `2 ** -1 == 0.5`), and sizes are
bounded so that `9 ** 9 ** 9` is refused instead of hanging the sweep.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable

MAX_EXPRESSION_CHARS = 2_000
MAX_EXPONENT = 1_000  # |b| in a ** b
MAX_INT_BITS = 10_000  # about 3,000 decimal digits: the largest integer a step may produce

_BINARY: dict[type[ast.operator], Callable[[object, object], object]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[object], object]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}

# What models write for the operators, mapped to Python's ("^" is power here, not xor).
_SPELLINGS = {"×": "*", "·": "*", "∗": "*", "÷": "/", "−": "-", "–": "-", "^": "**"}


def evaluate_arithmetic(expr: str) -> int | float:
    """The value of an arithmetic expression; ValueError for anything else or too big to compute."""
    if len(expr) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    for spelling, python in _SPELLINGS.items():
        expr = expr.replace(spelling, python)
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise ValueError(f"not an arithmetic expression: {expr.strip()!r}") from e
    try:
        return _evaluate(tree.body)
    except RecursionError as e:
        raise ValueError("expression nested too deeply") from e


def _evaluate(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant):
        if type(node.value) in (int, float):  # not bool, complex, str, bytes, None
            return node.value
        raise ValueError(f"not a number: {node.value!r}")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))  # type: ignore[return-value]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        _check_size(node.op, left, right)
        try:
            result = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError as e:
            raise ValueError("division by zero") from e
        except OverflowError as e:
            raise ValueError("result too large") from e
        if isinstance(result, complex):
            raise ValueError("result is not a real number")
        return result  # type: ignore[return-value]
    raise ValueError(f"not allowed in an arithmetic expression: {type(node).__name__}")


def _check_size(op: ast.operator, left: int | float, right: int | float) -> None:
    """Refuse a step before computing it when its integer result would be enormous."""
    if isinstance(op, ast.Pow):
        if abs(right) > MAX_EXPONENT:
            raise ValueError(f"exponent larger than {MAX_EXPONENT}")
        if isinstance(left, int) and isinstance(right, int) and right > 0:
            if max(abs(left).bit_length() - 1, 0) * right > MAX_INT_BITS:
                raise ValueError(f"result larger than 2**{MAX_INT_BITS}")
    elif isinstance(op, ast.Mult) and isinstance(left, int) and isinstance(right, int):
        if abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS + 1:
            raise ValueError(f"result larger than 2**{MAX_INT_BITS}")

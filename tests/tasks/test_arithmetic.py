"""The arithmetic task: seeded generation, correct references, graded levels, exact checking."""

from __future__ import annotations

import pytest

from oomlab.errors import ConfigError
from oomlab.tasks import create_task
from oomlab.tasks.arithmetic import LEVELS, ArithmeticTask, evaluate


def python_value(expression: str) -> int:
    """The expression's value by Python's own parser: an independent check of `evaluate`."""
    assert set(expression) <= set("0123456789+-* "), expression
    return eval(expression, {"__builtins__": {}}, {})  # noqa: S307 - digits and operators only


def test_create_with_no_options_mixes_all_levels() -> None:
    task = create_task("arithmetic")
    problems = task.problems(50, seed=3)
    levels = [p.difficulty for p in problems]
    assert sorted(set(levels)) == sorted(LEVELS)
    assert all(levels.count(level) == 10 for level in LEVELS)


def test_same_seed_same_problems_and_prefixes_agree() -> None:
    task = ArithmeticTask()
    first = task.problems(40, seed=7)
    assert first == ArithmeticTask().problems(40, seed=7)
    assert task.problems(15, seed=7) == first[:15]


def test_different_seeds_differ() -> None:
    task = ArithmeticTask()
    a = [p.inputs["expression"] for p in task.problems(30, seed=0)]
    b = [p.inputs["expression"] for p in task.problems(30, seed=1)]
    assert a != b
    assert sum(x == y for x, y in zip(a, b)) < 15


def test_ids_are_stable_and_unique() -> None:
    problems = ArithmeticTask().problems(100, seed=2)
    assert problems[4].id == "arith-mix-2-4"
    assert len({p.id for p in problems}) == 100
    assert ArithmeticTask(difficulty=3).problems(1, seed=2)[0].id == "arith-L3-2-0"


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_references_are_the_true_values(level: int) -> None:
    for problem in ArithmeticTask(difficulty=level).problems(200, seed=11):
        assert problem.reference == str(python_value(problem.inputs["expression"]))


def test_references_of_custom_specs_with_all_operators() -> None:
    task = ArithmeticTask(digits=3, operands=5, ops="+-*")
    problems = task.problems(300, seed=5)
    assert any(p.reference.startswith("-") for p in problems)  # signed answers do occur
    for problem in problems:
        assert problem.reference == str(python_value(problem.inputs["expression"]))


def test_evaluate_uses_precedence() -> None:
    assert evaluate([2, 3, 4], ["+", "*"]) == 14
    assert evaluate([2, 3, 4], ["-", "*"]) == -10
    assert evaluate([9, 3, 4], ["-", "-"]) == 2
    assert evaluate([2, 3, 4, 5], ["*", "-", "*"]) == -14


def test_levels_are_monotone_in_digits_and_operands() -> None:
    ordered = [LEVELS[level] for level in sorted(LEVELS)]
    for easier, harder in zip(ordered, ordered[1:]):
        assert easier.digits <= harder.digits
        assert easier.operands <= harder.operands
        assert (easier.digits, easier.operands, easier.ops) != (harder.digits, harder.operands, harder.ops)
    assert ordered[0].digits < ordered[-1].digits or ordered[0].operands < ordered[-1].operands


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_generated_problems_match_their_level(level: int) -> None:
    spec = LEVELS[level]
    for problem in ArithmeticTask(difficulty=level).problems(100, seed=1):
        tokens = problem.inputs["expression"].split(" ")
        numbers, ops = tokens[::2], tokens[1::2]
        assert len(numbers) == spec.operands
        assert all(len(n) == spec.digits for n in numbers)
        assert set(ops) <= set(spec.ops)
        assert problem.metadata == {"difficulty": level, "digits": spec.digits,
                                    "operands": spec.operands, "ops": spec.ops}


def test_prompt_is_bare_equations_ending_in_the_question() -> None:
    task = ArithmeticTask(difficulty=2)
    problem = task.problems(1, seed=0)[0]
    prompt = task.prompt(problem)
    lines = prompt.split("\n")
    assert lines[-1] == f"{problem.inputs['expression']} ="
    solved = lines[:-1]
    assert len(solved) == task.shots
    for line in solved:
        expression, value = line.split(" = ")
        assert int(value) == python_value(expression)
        assert expression != problem.inputs["expression"]  # the answer is never in the prompt


def test_a_question_equal_to_an_example_is_not_shown_solved() -> None:
    task = ArithmeticTask(difficulty=1)
    # one-digit sums repeat often; find a problem that equals an example
    for problem in task.problems(500, seed=0):
        prompt = task.prompt(problem)
        assert f"{problem.inputs['expression']} = {problem.reference}\n" not in prompt
        assert len(prompt.split("\n")) == task.shots + 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [(" 22", "22"), (" -7", "-7"), ("22\n", "22"), (" 022", "22"), (" 12 + 3", "12"),
     (" -0", "0"), (" = 5", "5"), (" x", None), ("", None)],
)
def test_extract_first_signed_integer(text: str, expected: str | None) -> None:
    assert ArithmeticTask().extract(text) == expected


def test_check_is_exact() -> None:
    task = ArithmeticTask()
    problem = next(p for p in task.problems(50, seed=0) if p.reference not in ("0",))
    assert task.check(problem.reference, problem)
    assert task.check(task.extract(f" {problem.reference}\n"), problem)
    assert not task.check(str(int(problem.reference) + 1), problem)
    assert not task.check(problem.reference + ".0", problem)
    assert not task.check(None, problem)


def test_sampling_stops_at_line_end_with_room_for_the_answer() -> None:
    params = ArithmeticTask().sampling()
    assert params.stop == ("\n",)
    assert 8 <= params.max_tokens <= 16
    assert ArithmeticTask(digits=4, operands=4, ops="*").sampling().max_tokens >= 18


def test_config_rebuilds_the_same_task() -> None:
    for task in (ArithmeticTask(), ArithmeticTask(difficulty=4), ArithmeticTask(digits=2, operands=3, ops="*-")):
        config = task.config()
        rebuilt = create_task(config.pop("name"), **config)
        assert rebuilt.problems(10, seed=9) == task.problems(10, seed=9)
        assert [rebuilt.prompt(p) for p in rebuilt.problems(3)] == [task.prompt(p) for p in task.problems(3)]


@pytest.mark.parametrize(
    "options",
    [{"difficulty": 0}, {"difficulty": 99}, {"difficulty": 1, "digits": 2}, {"ops": "/"},
     {"digits": 0}, {"operands": 1}, {"ops": ""}],
)
def test_bad_options_are_config_errors(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ArithmeticTask(**options)  # type: ignore[arg-type]

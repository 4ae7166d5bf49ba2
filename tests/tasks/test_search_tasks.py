"""Countdown and Game of 24: seeded solvable instances, and a checker that validates expressions."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.tasks import TASKS, create_task
from oomlab.tasks.countdown import _EXAMPLES as COUNTDOWN_EXAMPLES
from oomlab.tasks.countdown import CountdownTask, check_expression, extract_expression, solve_countdown
from oomlab.tasks.game24 import _EXAMPLES as GAME24_EXAMPLES
from oomlab.tasks.game24 import SOLVABLE_SETS, Game24Task, difficulty, solution_count, solve_game24


def test_both_tasks_are_registered():
    assert {"countdown", "game24"} <= set(TASKS.names())
    assert isinstance(create_task("countdown"), CountdownTask)
    assert isinstance(create_task("game24", style="steps"), Game24Task)


# ---------------------------------------------------------------- generation


@pytest.mark.parametrize("task", [CountdownTask(), CountdownTask(n_numbers=(3, 5), integer_steps=True), Game24Task()])
def test_problems_are_deterministic_per_seed_and_prefix_stable(task):
    first = task.problems(12, seed=7)
    assert first == task.problems(12, seed=7)
    assert task.problems(5, seed=7) == first[:5]
    assert first != task.problems(12, seed=8)
    assert len({p.id for p in first}) == 12


@pytest.mark.parametrize(
    "task", [CountdownTask(), CountdownTask(n_numbers=(2, 3, 4, 5, 6), integer_steps=True), Game24Task()]
)
def test_every_generated_instance_is_solvable(task):
    for problem in task.problems(40, seed=1):
        numbers, target = problem.inputs["numbers"], problem.inputs["target"]
        assert task.check(problem.reference, problem), problem
        use_all = isinstance(task, Game24Task)
        integer_steps = getattr(task, "integer_steps", False)
        assert solve_countdown(numbers, target, use_all=use_all, integer_steps=integer_steps) is not None


def test_countdown_instances_follow_the_configuration():
    task = CountdownTask(n_numbers=(3, 4, 5), number_range=(1, 10), target_range=(50, 60))
    for i, problem in enumerate(task.problems(30, seed=0)):
        numbers, target = problem.inputs["numbers"], problem.inputs["target"]
        assert len(numbers) == (3, 4, 5)[i % 3] == problem.difficulty
        assert all(1 <= n <= 10 for n in numbers) and 50 <= target <= 60
        assert target not in numbers  # no zero-step instances


def test_game24_instances_are_four_numbers_from_1_to_13_without_repeats():
    problems = Game24Task().problems(100, seed=3)
    assert len({tuple(p.inputs["numbers"]) for p in problems}) == 100
    for p in problems:
        assert len(p.inputs["numbers"]) == 4 and all(1 <= n <= 13 for n in p.inputs["numbers"])
        assert p.inputs["target"] == 24
        assert p.difficulty in (1, 2, 3) and p.metadata["n_solutions"] >= 1
    assert {p.difficulty for p in problems} == {1, 2, 3}


def test_bad_configuration_is_a_config_error():
    for options in ({"n_numbers": 1}, {"number_range": (5, 1)}, {"style": "essay"}, {"n_numbers": ()}):
        with pytest.raises(ConfigError):
            CountdownTask(**options)
    with pytest.raises(ConfigError):
        Game24Task(style="essay")
    with pytest.raises(ConfigError):
        CountdownTask(n_numbers=2, number_range=(1, 1), target_range=(50, 50)).problems(1)
    with pytest.raises(ConfigError):
        Game24Task().problems(1363)


def test_config_rebuilds_the_same_task():
    task = CountdownTask(n_numbers=(3, 4), number_range=(1, 50), integer_steps=True, style="steps")
    config = task.config()
    rebuilt = create_task(config.pop("name"), **config)
    assert rebuilt.problems(5, seed=2) == task.problems(5, seed=2)
    assert rebuilt.prompt(task.problems(1)[0]) == task.prompt(task.problems(1)[0])


# ---------------------------------------------------------------- the solvers


def test_game24_solver_agrees_with_the_known_facts():
    assert solve_game24((1, 1, 1, 1)) is None
    assert solve_game24((3, 3, 8, 8)) == "8 / (3 - 8 / 3)"  # needs a fraction on the way
    assert check_expression(solve_game24((1, 5, 5, 5)), (1, 5, 5, 5), 24, use_all=True)
    assert solution_count((3, 3, 8, 8)) == 1 and difficulty((3, 3, 8, 8)) == 3
    assert difficulty((1, 2, 3, 4)) == 1


@pytest.mark.slow
def test_exactly_1362_of_the_1820_game24_sets_are_solvable():
    sets = list(itertools.combinations_with_replacement(range(1, 14), 4))
    assert len(sets) == 1820
    assert sum(solve_game24(s) is not None for s in sets) == SOLVABLE_SETS == 1362


def test_countdown_solver_respects_its_rules():
    assert solve_countdown((2, 3), 6) == "2 * 3"
    assert solve_countdown((2, 3), 7) is None
    assert solve_countdown((3, 3), 9) is not None  # a number given twice may be used twice
    assert solve_countdown((1, 2, 97), 3) == "1 + 2"  # not every number has to be used
    assert solve_countdown((1, 2, 97), 3, use_all=True) is None
    assert solve_countdown((2, 3), 1, integer_steps=True) == "3 - 2"
    assert solve_countdown((2, 3), 2) == "2"  # generated instances never have the target among the numbers
    assert solve_countdown((3, 3, 8, 8), 24, use_all=True, integer_steps=True) is None  # needs 8 / 3
    assert solve_countdown((3, 3, 8, 8), 24, use_all=True) is not None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 25), min_size=2, max_size=5), st.integers(1, 120), st.booleans(), st.booleans())
def test_any_countdown_solution_checks(numbers, target, use_all, integer_steps):
    solution = solve_countdown(numbers, target, use_all=use_all, integer_steps=integer_steps)
    if solution is not None:
        assert check_expression(solution, numbers, target, use_all=use_all, integer_steps=integer_steps)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 13), min_size=4, max_size=4))
def test_any_game24_solution_checks(numbers):
    solution = solve_game24(numbers)
    if solution is not None:
        assert check_expression(solution, numbers, 24, use_all=True)
        task = Game24Task()
        assert task.check(task.extract(f"Answer: {solution} = 24"), _game24(numbers))


# ---------------------------------------------------------------- the checker


def _game24(numbers):
    return Problem(id="g", inputs={"numbers": list(numbers), "target": 24}, reference=solve_game24(numbers) or "")


def _countdown(numbers, target):
    return Problem(id="c", inputs={"numbers": list(numbers), "target": target}, reference="")


@pytest.mark.parametrize(
    ("numbers", "answer"),
    [
        ((4, 9, 10, 13), "(13 - 9) * (10 - 4)"),
        ((4, 9, 10, 13), "4 * (9 - (13 - 10))"),
        ((4, 9, 10, 13), "(10 - 4) * (13 - 9) = 24"),
        ((1, 4, 8, 8), "(8 / 4 + 1) * 8"),
        ((1, 4, 8, 8), "8 * (1 + 8 / 4)"),
        ((3, 3, 8, 8), "8 / (3 - 8 / 3)"),
        ((1, 5, 5, 5), "(5 - 1 / 5) * 5"),
        ((5, 5, 5, 9), "((5 + 5) + 5) + 9"),
        ((2, 9, 10, 12), "2 × 12 × (10 − 9)"),
        ((2, 9, 10, 12), "2 x 12 x (10 - 9)"),
    ],
)
def test_game24_check_accepts_any_valid_expression(numbers, answer):
    assert Game24Task().check(answer, _game24(numbers))


@pytest.mark.parametrize(
    ("numbers", "answer", "why"),
    [
        ((4, 9, 10, 13), "(13 - 9) * (10 - 5)", "number not given, wrong value"),
        ((4, 9, 10, 13), "(13 - 9) * (10 - 4) + 1", "number not given"),
        ((4, 9, 10, 13), "13 + 9 + 10 - 4", "wrong value (28)"),
        ((4, 9, 10, 13), "(13 - 9) * 6", "6 is not given"),
        ((4, 9, 10, 13), "4 * 4 + 9 - 1", "4 used twice, 1 not given"),
        ((4, 9, 10, 13), "(13 - 9) * (10 - 4) * (10 / 10)", "10 reused"),
        ((2, 9, 10, 12), "2 * 12", "9 and 10 missing"),
        ((2, 9, 10, 12), "2 * 12 * (10 - 9) * 1", "1 not given"),
        ((4, 9, 10, 13), "(13 - 9) ** 2 + 10 - 4 / 1", "** not allowed"),
        ((4, 9, 10, 13), "(13 - 9) * (10 - 4) // 1", "// not allowed"),
        ((4, 9, 10, 13), "-(4 - 13) + 10 + 4", "unary minus not allowed"),
        ((4, 9, 10, 13), "abs(4 - 13) + 10 + 4", "call not allowed"),
        ((4, 9, 10, 13), "x * (10 - 4)", "name not allowed"),
        ((4, 9, 10, 13), "24.0 + 0 * (4 + 9 + 10 + 13)", "float not allowed"),
        ((4, 9, 10, 13), "(13 - 9) * (10 - 4) + 4 / (9 - 9)", "division by zero"),
        ((4, 9, 10, 13), "4 / (10 - 10) + 9 + 13", "division by zero"),
        ((4, 9, 10, 13), "", "empty"),
        ((4, 9, 10, 13), "24", "no expression"),
        ((4, 9, 10, 13), "(13 - 9) * (10 - 4", "unbalanced"),
        ((4, 9, 10, 13), "__import__('os')", "code"),
        ((4, 9, 10, 13), "(13 - 9) * (10 - 4)" + " + 0" * 200, "too long"),
    ],
)
def test_game24_check_rejects(numbers, answer, why):
    assert not Game24Task().check(answer, _game24(numbers)), why


def test_check_of_none_is_false():
    assert not Game24Task().check(None, _game24((4, 9, 10, 13)))
    assert not CountdownTask().check(None, _countdown((1, 2), 3))


def test_countdown_check_allows_a_subset_but_no_reuse():
    task, problem = CountdownTask(), _countdown((3, 8, 15, 21), 71)
    for answer in ["21 / 3 * 8 + 15", "15 + 8 * 21 / 3", "(21 / 3) * 8 + 15 = 71"]:
        assert task.check(answer, problem), answer
    assert task.check("8 * 3", _countdown((3, 8, 15, 21), 24))  # a subset of the numbers
    assert not task.check("8 * 3 * 3 / 3", _countdown((3, 8, 15, 21), 24))  # 3 reused
    assert task.check("8 * 3 * 3 / 3", _countdown((3, 3, 3, 8), 24))  # given three times
    assert not task.check("8 * 3 + 0", _countdown((3, 8, 15, 21), 24))  # 0 not given
    assert not task.check("15 + 8 * 21 / 3", _countdown((3, 8, 15, 21), 72))  # wrong value


def test_countdown_integer_steps_rule():
    free, strict = CountdownTask(), CountdownTask(integer_steps=True)
    below_zero = _countdown((5, 8, 10), 3)
    assert free.check("5 - 10 + 8", below_zero)
    assert not strict.check("5 - 10 + 8", below_zero)  # 5 - 10 is negative
    assert strict.check("8 + 5 - 10", below_zero)
    fraction = _countdown((3, 3, 6, 9), 6)
    assert free.check("3 / 9 * 6 * 3", fraction)
    assert not strict.check("3 / 9 * 6 * 3", fraction)  # 3 / 9 is not whole
    assert strict.check("6 * 3 / 9 * 3", fraction)


def test_few_shot_examples_are_valid_answers():
    for numbers, target, _steps, answer in COUNTDOWN_EXAMPLES:
        assert check_expression(answer, numbers, target)
        assert check_expression(answer, numbers, target, integer_steps=True)
    for numbers, _steps, answer in GAME24_EXAMPLES:
        assert check_expression(answer, numbers, 24, use_all=True)


# ---------------------------------------------------------------- prompts and extraction


@pytest.mark.parametrize("task", [CountdownTask(), CountdownTask(style="steps"), Game24Task(), Game24Task("steps")])
def test_prompt_ends_where_the_model_continues(task):
    problem = task.problems(1, seed=0)[0]
    prompt = task.prompt(problem)
    numbers = " ".join(map(str, problem.inputs["numbers"]))
    assert numbers in prompt.splitlines()[-2] or numbers in prompt.splitlines()[-3]
    assert prompt.endswith("Answer:") or prompt.endswith("Steps:\n")
    params = task.sampling()
    assert params.stop and params.max_tokens >= 32
    assert task.style == "steps" or params.stop == ("\n",)
    assert problem.reference not in prompt


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" (4 + 8) * (6 - 4) = 24", "(4 + 8) * (6 - 4)"),
        (" (4+8)*(6-4) = 24\nInput: 1 2 3 4", "(4 + 8) * (6 - 4)"),
        (
            "4 + 8 = 12 (left: 4 6 12)\n6 - 4 = 2 (left: 2 12)\n2 * 12 = 24 (left: 24)\nAnswer: (6 - 4) * (4 + 8) = 24",
            "(6 - 4) * (4 + 8)",
        ),
        (
            "Input: 4 4 6 8\nAnswer: (4 + 8) * (6 - 4) = 24\n\nInput: 1 4 8 8\nAnswer: (8 / 4 + 1) * 8 = 24",
            "(8 / 4 + 1) * 8",
        ),
        ("Answer: 3 × 8 = 24.", "3 * 8"),
        ("answer: $(8 \\div 4 + 1) \\times 8 = 24$", "(8 / 4 + 1) * 8"),
        ("**Answer:** 5 + 5 + 5 + 9 = 24", "5 + 5 + 5 + 9"),
        ("The answer: ((5 + 5) + 5) + 9", "5 + 5 + 5 + 9"),
        ("\n\n 2 x 12 x (10 - 9)\n", "2 * 12 * (10 - 9)"),
        ("Answer: 4 * (9 - (13 - 10) = 24", "4 * (9 - (13 - 10)"),  # malformed: kept, check fails
        ("", None),
        ("   \n  ", None),
        ("I am not sure how to do this.", None),
        ("Answer: impossible", None),
    ],
)
def test_extract_realistic_model_text(text, expected):
    assert extract_expression(text) == expected
    assert Game24Task().extract(text) == expected
    assert CountdownTask().extract(text) == expected


def test_extract_then_check_end_to_end():
    task = Game24Task()
    problem = _game24((4, 9, 10, 13))
    assert task.check(task.extract(" (13 - 9) * (10 - 4) = 24\n"), problem)
    assert not task.check(task.extract(" (13 - 9) * (10 - 5) = 24\n"), problem)
    assert not task.check(task.extract("Answer: 4 * (9 - (13 - 10) = 24"), problem)

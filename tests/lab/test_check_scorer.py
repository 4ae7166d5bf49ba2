"""The check scorer (a verifier that reads the problem, never the reference) and lab-countdown, its lab task."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from oomlab.backends.base import Generation
from oomlab.errors import ConfigError
from oomlab.lab.ladder import Ladder
from oomlab.lab.problems import held_out
from oomlab.problem import Problem
from oomlab.scorers import Candidate, create_scorer
from oomlab.tasks.base import TASKS, create_task
from oomlab.tasks.lab_countdown import check_chain, evaluate


def _candidate(answer):
    return Candidate(Generation(text=answer or "", prompt_tokens=1, completion_tokens=1, seconds=0.0, seed=0), answer)


def test_reference_free_tasks_are_the_puzzles():
    free = {name for name in TASKS.names() if TASKS.get(name).reference_free_check}
    assert {"countdown", "game24", "lab-countdown"} <= free
    assert not free & {"lab-sum", "lab-chain", "arithmetic", "gsm8k"}


@pytest.mark.parametrize("name,options", [("lab-sum", {}), ("gsm8k", {"path": "x.jsonl"}), ("arithmetic", {})])
def test_check_refuses_a_task_whose_checker_reads_the_reference(name, options):
    task = TASKS.get(name).__new__(TASKS.get(name))  # the class decides; no dataset needed
    problem = Problem("p", {"prompt": "1+1="}, "2")
    with pytest.raises(ConfigError, match="use scorer=oracle"):
        create_scorer("check").score(_candidate("2"), problem, task)


def test_check_on_countdown_accepts_any_valid_expression_and_never_reads_the_reference():
    task = create_task("countdown")
    scorer = create_scorer("check")
    assert not scorer.oracle and "reads the problem, not the answer" in scorer.label()
    for problem in task.problems(20, seed=1):
        garbage = replace(problem, reference="this is not an answer")
        good = task.extract(f"Answer: {problem.reference} = {problem.inputs['target']}")
        for answer, expected in ((good, 1.0), ("1 + 1", 0.0), (None, 0.0), (f"({good}) * 999", 0.0)):
            assert scorer.score(_candidate(answer), problem, task) == expected
            assert scorer.score(_candidate(answer), garbage, task) == expected


def test_lab_countdown_checks_any_chain_against_the_prompt_only():
    assert evaluate("9-2*5+7") == 42 and evaluate("3*5-5-2") == 8
    assert check_chain("9-2*5+7", "2579", 42) and check_chain("5*9-2-7", "2579", 36)
    assert not check_chain("9-9*5", "2579", 0)  # 9 given once, used twice
    assert not check_chain("9-2*5+", "2579", 35) and not check_chain(None, "2579", 42)
    for fmt in ("direct", "cot"):
        task = create_task("lab-countdown", format=fmt)
        rng = random.Random(0)
        scorer = create_scorer("check")
        for level in task.levels:
            for _ in range(50):
                ex = task.draw(rng, level)
                problem = Problem(ex.key, {"prompt": ex.prompt}, "garbage")  # reference unusable
                assert task.check(task.extract(ex.answer), problem), (ex.prompt, ex.answer)
                assert scorer.score(_candidate(task.extract(ex.answer)), problem, task) == 1.0
                digits, target = ex.key.split(">")
                assert int(target) not in map(int, digits)  # no one-number answer
                # another chain of the same numbers that reaches the target is accepted too
                alt = "+".join(sorted(digits))
                assert task.check(alt, problem) == (evaluate(alt) == int(target))


def test_lab_countdown_formats_and_split():
    direct, cot = create_task("lab-countdown", format="direct"), create_task("lab-countdown", format="cot")
    ex = cot.draw(random.Random(3), 4)
    steps, chain = ex.answer.rstrip("\n").split(";")
    assert chain == ex.reference and direct.draw(random.Random(3), 4).answer == chain + "\n"
    values = [int(v[:2]) for v in steps.split("=")[1:]]
    assert values[-1] == int(ex.key.split(">")[1]) == evaluate(chain)
    pd = direct.problems(60)
    assert [p.inputs for p in pd] == [p.inputs for p in cot.problems(60)]
    assert all(held_out("lab-countdown", p.inputs["key"]) for p in pd)
    assert cot.extract("1+2=03;1+2") == "1+2" and cot.extract("1+2=03") is None and direct.extract("1+") is None


def test_ladder_adds_best_of_n_check_only_where_the_task_has_a_reference_free_checker():
    assert not any("scorer=check" in s for s in Ladder("sum", (1e9,), task="lab-sum").strategies())
    strategies = Ladder("cd", (1e9,), task="lab-countdown").strategies()
    assert any(s.startswith("best-of-n:scorer=check") for s in strategies)


@pytest.fixture(scope="module")
def countdown_lab(tmp_path_factory):
    pytest.importorskip("torch")
    from oomlab.lab.presets import PRESETS
    from oomlab.lab.run import run_lab

    db = tmp_path_factory.mktemp("lab-countdown") / "lab.db"
    return db, run_lab(PRESETS["tiny-countdown"], db, threads=1, n_boot=100)


def test_tiny_countdown_ladder_selects_by_check_and_reads_the_rate_off_it(countdown_lab, tmp_path):
    from oomlab.lab.report import write_report
    from oomlab.lab.run import CHECK_LABEL

    db, result = countdown_lab
    assert result.exchange_label == CHECK_LABEL and "scorer=check" in result.exchange_key
    for p in result.points:
        check = p.curve(result.exchange_key)
        oracle = next(c for c in p.curves.values() if c.oracle)
        assert not check.oracle
        # an exact reference-free checker picks a correct sample whenever the draw has one: pass@k
        assert check.per_problem == pytest.approx(oracle.per_problem)
    lifts = [lf for lf in result.lifts if lf.strategy == CHECK_LABEL]
    assert lifts and not any(lf.oracle for lf in lifts)
    assert any(CHECK_LABEL in what and "oracle" not in what for what in result.gains)
    paths = write_report(result, tmp_path)
    summary = paths["summary"].read_text()
    assert "reads the problem, not the answer" in summary
    import json

    data = json.loads(summary)
    assert data["exchange_strategy"]["label"] == CHECK_LABEL
    assert any("scorer=check" in s for s in data["ladder"]["strategies"])
    assert "never the reference answer" in paths["report"].read_text()


def test_ordered_countdown_uses_every_digit_in_the_given_order():
    ordered = create_task("lab-countdown", format="direct", ordered=True)
    anyorder = create_task("lab-countdown", format="direct")
    rng = random.Random(2)
    while True:  # a chain whose first operation commutes, on two different digits
        ex = ordered.draw(rng, 4)
        chain = ex.answer.rstrip("\n")
        if chain[1] in "+*" and chain[0] != chain[2]:
            break
    problem = Problem(ex.key, {"prompt": ex.prompt}, "garbage")
    assert chain[0::2] == ex.key.split(">")[0] and ordered.check(chain, problem)
    swapped = chain[2] + chain[1] + chain[0] + chain[3:]  # same value, digits out of the given order
    assert evaluate(swapped) == evaluate(chain)
    assert not ordered.check(swapped, problem) and anyorder.check(swapped, problem)


def test_default_cpu_ladder_is_countdown_with_a_deployable_verifier():
    from oomlab.lab.presets import PRESETS

    cpu = PRESETS["cpu"]
    assert cpu.task == "lab-countdown" and cpu.reference_free and cpu.span_ooms >= 2 and len(cpu.budgets) >= 5
    assert any("scorer=check" in s for s in cpu.strategies())
    assert PRESETS["cpu-sum"].task == "lab-sum" and not PRESETS["cpu-sum"].reference_free
    # every level has enough held-out problems for the ladder's sweep
    assert len(create_task(cpu.task, **cpu.task_options).problems(cpu.problems)) == cpu.problems


def test_a_sweep_refuses_the_check_scorer_on_a_task_that_needs_the_reference_before_drawing():
    from oomlab.errors import ConfigError
    from oomlab.sweep import SweepConfig

    with pytest.raises(ConfigError, match="use scorer=oracle"):
        SweepConfig(task="arithmetic", strategies=["best-of-n:scorer=check"], backend="scripted").validate()
    SweepConfig(task="countdown", strategies=["best-of-n:scorer=check"], backend="scripted").validate()

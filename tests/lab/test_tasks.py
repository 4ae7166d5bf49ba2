"""Lab tasks: seeded, exactly checked, graded, and a held-out slice no training stream can reach."""

from __future__ import annotations

import random

import pytest

from oomlab.errors import ConfigError
from oomlab.lab.data import step_rows
from oomlab.lab.problems import held_out
from oomlab.tasks.base import TASKS, create_task

LAB_TASKS = [("lab-sum", {}), ("lab-sum", {"digits": 1, "min_operands": 3, "max_operands": 4}),
             ("lab-chain", {}), ("lab-chain", {"aligned": False, "max_ops": 4})]


def test_registered():
    assert {"lab-sum", "lab-chain"} <= set(TASKS.names())


@pytest.mark.parametrize("name,options", LAB_TASKS)
def test_formats_pose_the_same_problems_and_check_them_exactly(name, options):
    direct, cot = create_task(name, format="direct", **options), create_task(name, format="cot", **options)
    pd, pc = direct.problems(40, seed=3), cot.problems(40, seed=3)
    assert [p.id for p in pd] == [p.id for p in pc] and [p.reference for p in pd] == [p.reference for p in pc]
    assert [direct.prompt(p) for p in pd] == [cot.prompt(p) for p in pc]
    assert pd == direct.problems(40, seed=3) and pd != direct.problems(40, seed=4)  # seeded
    assert sorted({p.difficulty for p in pd}) == list(direct.levels)  # every level, graded
    rng = random.Random(0)
    for task in (direct, cot):
        for level in task.levels:
            ex = task.draw(rng, level)
            assert task.check(task.extract(ex.answer), _problem(ex)), (ex.prompt, ex.answer)
            wrong = ex.answer.replace(";", ";9") if task.format == "cot" else "9" + ex.answer
            assert not task.check(task.extract(wrong), _problem(ex))
            assert len(task.encode(ex.prompt)) <= task.max_prompt_tokens(level)
            assert len(task.encode(ex.answer)) <= task.max_answer_tokens(level)


def _problem(ex):
    from oomlab.problem import Problem

    return Problem(ex.key, {"prompt": ex.prompt}, ex.reference)


def test_worked_examples():
    rng = random.Random(5)
    sum_cot = create_task("lab-sum", format="cot", padded=True, reverse=True)
    ex = sum_cot.draw(rng, 2)
    a, b, c = (int(x) for x in ex.key.split("+"))
    assert ex.answer == f"{a + b:03d}"[::-1] + "," + f"{a + b + c:03d}"[::-1] + ";" + f"{a + b + c:03d}"[::-1] + "\n"
    chain = create_task("lab-chain", format="cot", max_ops=3)
    ex = chain.draw(random.Random(1), 3)
    x = int(ex.key[0])
    states = []
    for op, a in zip(ex.key[1::2], ex.key[2::2]):
        x = {"+": x + int(a), "-": x - int(a), "*": x * int(a)}[op] % 7
        states.append(str(x))
    assert ex.prompt == ex.key.ljust(7, ".") + "=" and ex.answer == ",".join(states) + ";" + states[-1] + "\n"
    assert chain.extract("1,2,3") is None and chain.extract("1,2;x") is None


@pytest.mark.parametrize("name,options", LAB_TASKS)
def test_training_stream_never_draws_a_held_out_problem(name, options):
    task = create_task(name, format="cot", **options)
    keys = [r.example.key for step in range(300) for r in step_rows(task, 0, step, 16)]
    assert not any(held_out(task.name, k) for k in keys)
    evaluation = {p.inputs["key"] for p in task.problems(200, seed=0)}
    assert evaluation.isdisjoint(keys) and all(held_out(task.name, k) for k in evaluation)
    assert len(set(keys)) > 1000  # the stream is not a small fixed set


@pytest.mark.parametrize("name,options", [*LAB_TASKS, ("lab-countdown", {"min_numbers": 3, "max_numbers": 4})])
def test_the_training_split_poses_training_problems_for_the_generalisation_gap(name, options):
    """split=train: problems only a training stream can draw, as the held-out ones are posed (a sweep over
    both gives a model's generalisation gap); the default split's identity is unchanged."""
    held, train = create_task(name, format="direct", **options), create_task(name, format="direct", split="train", **options)
    ph, pt = held.problems(120, seed=0), train.problems(120, seed=0)
    assert all(held_out(name, p.inputs["key"]) for p in ph) and not any(held_out(name, p.inputs["key"]) for p in pt)
    assert len({p.inputs["key"] for p in pt}) == 120 and sorted({p.difficulty for p in pt}) == list(train.levels)
    assert {p.id for p in ph}.isdisjoint(p.id for p in pt) and pt == train.problems(120, seed=0)
    assert all(train.check(p.reference, p) for p in pt)
    assert "split" not in held.config() and train.config()["split"] == "train"
    with pytest.raises(ConfigError, match="valid splits: eval, train"):
        create_task(name, split="test", **options)


def test_bad_options_are_refused():
    with pytest.raises(ConfigError, match="format"):
        create_task("lab-sum", format="essay")
    with pytest.raises(ConfigError):
        create_task("lab-chain", modulus=11)
    with pytest.raises(ConfigError, match="too few held-out"):
        create_task("lab-sum", digits=1, max_operands=2).problems(40)

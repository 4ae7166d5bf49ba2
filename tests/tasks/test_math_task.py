"""The math task on the real MATH-500 split: loading, levels, prompts, answer extraction, and a sweep.

The sweep runs the embedded Gemma 3 270M on a few MATH-500 problems; its answers are graded by the
real Math-Verify. The data is read from ../shared/data/math500 by path (it is not part of the
package); a test is skipped only if that file is absent.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from oomlab.errors import ConfigError, DatasetError
from oomlab.tasks import create_task
from oomlab.tasks.math_task import CHAT_INSTRUCTION, MathTask, extract_answer, last_boxed, parse_level


def find_math500() -> Path | None:
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data" / "math500" / "test.jsonl"
        if candidate.is_file():
            return candidate
    return None


@pytest.fixture(scope="module")
def path() -> Path:
    found = find_math500()
    if found is None:
        pytest.skip("shared MATH-500 data not found: expected shared/data/math500/test.jsonl beside the repository")
    return found


@pytest.fixture(scope="module")
def task(path: Path) -> MathTask:
    return MathTask(path=path)


@pytest.fixture(scope="module")
def backend():
    from oomlab.backends.llamacpp import LlamaCppBackend

    # one thread: on a shared 2-core machine llama.cpp's spinning workers collapse when oversubscribed
    b = LlamaCppBackend(n_ctx=2048, max_parallel=8, n_threads=1)
    yield b
    b.close()


def test_loads_math500_with_levels_and_subjects(task: MathTask, path: Path) -> None:
    problems = task.problems(1000)
    assert len(problems) == 500 and len({p.id for p in problems}) == 500
    first = problems[0]
    assert first.id == "math-math500-test-0"
    assert first.inputs["problem"].startswith("Convert the point $(0,3)$ in rectangular coordinates")
    assert first.reference == "( 3, \\frac{\\pi}{2} )"  # the answer field, \left/\right tidied away
    assert first.metadata["level"] == first.difficulty == 2 and first.metadata["subject"] == "Precalculus"
    assert first.metadata["unique_id"] == "test/precalculus/807.json"
    assert "solution" not in first.inputs and "answer" not in first.inputs  # nothing of the answer in the prompt
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert Counter(p.difficulty for p in problems) == Counter(r["level"] for r in records)
    assert set(Counter(p.difficulty for p in problems)) == {1, 2, 3, 4, 5}
    assert {p.metadata["subject"] for p in problems} == {r["subject"] for r in records}


def test_the_registry_builds_it(path: Path) -> None:
    task = create_task("math", path=str(path), style="chat", shots=0)
    assert isinstance(task, MathTask) and task.config()["style"] == "chat"


def test_prompts_in_both_standard_forms(task: MathTask, path: Path) -> None:
    problem = task.problems(1)[0]
    few = task.prompt(problem)
    assert few.count("Problem:\n") == 5 and few.endswith(f"Problem:\n{problem.inputs['problem']}\n\nSolution:\n")
    assert few.count("The final answer is $\\boxed{") == 4
    assert task.sampling().stop == ("\n\n", "\nProblem:")
    chat = MathTask(path=path, style="chat")
    assert chat.prompt(problem) == f"{problem.inputs['problem']}\n{CHAT_INSTRUCTION}"
    assert "within \\boxed{}" in CHAT_INSTRUCTION and chat.sampling().stop == ()
    assert MathTask(path=path, shots=0).prompt(problem).startswith("Problem:\n")


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("so $x = \\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("first \\boxed{3}, then the final \\boxed{4}", "4"),  # the last box
        ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "( 3, \\frac{\\pi}{2} )"),  # nested braces
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),  # escaped braces are not the box's
        ("\\fbox{7}", "7"),
        ("The answer is \\boxed 5.", "5"),
        ("\\boxed{\\text{Evelyn}}", "\\text{Evelyn}"),
        ("Final Answer: The final answer is $14/3$. I hope it is correct.", "14/3"),  # Minerva's form, no box
        ("We get 12 apples.\nThe answer is 12", "12"),
        ("Answer: $\\dfrac{3}{4}$", "\\frac{3}{4}"),
        ("14/3", "14/3"),  # a completion that is nothing but the answer
        ("cut off \\boxed{\\frac{1}{", None),  # an unclosed box is no answer
        ("We compute things.\nAnd more things without any conclusion at all here.", None),
        ("", None),
    ],
)
def test_extraction(text: str, answer: str | None) -> None:
    assert extract_answer(text) == answer


def test_extraction_agrees_with_every_math500_answer(path: Path, task: MathTask) -> None:
    """The answer field of MATH-500 is its solution's last box: extraction must find exactly it."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [last_boxed(r["solution"]) for r in records] == [r["answer"] for r in records]


def test_levels_and_bad_files(tmp_path: Path) -> None:
    assert [parse_level(v) for v in (3, "Level 4", "Level ?", None, True)] == [3, 4, None, None, None]
    aime = tmp_path / "aime.jsonl"
    aime.write_text(json.dumps({"question": "What is 6 * 7?", "answer": 42, "level": "Level 5"}) + "\n"
                    + json.dumps({"question": "Box it.", "solution": "So \\boxed{9}."}) + "\n")
    task = MathTask(path=aime, problem_field="question")
    a, b = task.problems(2)
    assert (a.reference, a.difficulty, b.reference, b.difficulty) == ("42", 5, "9", None)
    assert task.check("42", a) and not task.check("41", a) and task.check("9", b)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"problem": "No answer here", "solution": "none"}) + "\n")
    with pytest.raises(DatasetError, match="line 1"):
        MathTask(path=broken).problems(1)
    with pytest.raises(ConfigError, match="style"):
        MathTask(path=aime, style="socratic")


@pytest.mark.slow
def test_a_math500_sweep_keeps_samples_grades_and_levels(path: Path, backend, tmp_path: Path) -> None:
    from oomlab.store import Store
    from oomlab.sweep import Sweep, SweepConfig

    store = Store(tmp_path / "math.db")
    # one worked example and short completions: a 270M model on 2 shared cores, not a benchmark
    config = SweepConfig(task="math", task_options={"path": str(path), "max_tokens": 32, "shots": 1},
                         strategies=["majority"], n=2, problems=2, seed=0)
    sweep = Sweep(config, store, backend=backend)
    result = sweep.run()
    task = sweep.task
    problems = task.problems(2)
    rows = store.problems(result.run_id)
    assert [r.metadata["level"] for r in rows] == [p.difficulty for p in problems]
    assert [r.metadata["subject"] for r in rows] == [p.metadata["subject"] for p in problems]
    attempts = store.attempts(result.run_id)
    assert len(attempts) == 2 and all(a.budget == 2 and len(a.sample_ids) == 2 for a in attempts)
    samples = store.samples(sorted({i for a in attempts for i in a.sample_ids}))
    assert len(samples) == 4 and all(s.generation.completion_tokens > 0 for s in samples.values())
    for a in attempts:  # the stored grades are the grader's verdicts on the stored samples
        problem = problems[a.problem_idx]
        answers = [task.extract(samples[i].generation.text) for i in a.sample_ids]
        assert a.trace["answers"] == answers
        assert a.trace["correct"] == [task.check(x, problem) for x in answers]
        assert a.correct == task.check(a.answer, problem)
    store.close()

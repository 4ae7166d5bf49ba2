"""GSM8K from the shared copy of its test split: loading, prompt, and extraction on real model text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oomlab.errors import ConfigError, DatasetError
from oomlab.tasks import create_task
from oomlab.tasks.gsm8k import EXEMPLARS, GSM8KTask


@pytest.fixture(scope="module")
def task(gsm8k_dir: Path) -> GSM8KTask:
    return GSM8KTask(path=gsm8k_dir / "test.jsonl")


def test_loads_all_1319_problems(task: GSM8KTask) -> None:
    problems = task.problems(10_000)
    assert len(problems) == 1319
    assert len({p.id for p in problems}) == 1319
    first = problems[0]
    assert first.id == "gsm8k-test-0"
    assert first.inputs["question"].startswith("Janet\u2019s ducks lay 16 eggs per day.")
    assert first.reference == "18"
    assert first.metadata == {"line": 1, "difficulty": 2}  # two solution lines before '#### 18'
    assert problems[2].reference == "70000"
    assert all(p.reference.lstrip("-").replace(".", "").isdigit() for p in problems)
    assert "answer" not in first.inputs  # the solution never reaches the prompt


def test_problems_in_file_order_or_seeded_sample(gsm8k_dir: Path, task: GSM8KTask) -> None:
    assert task.problems(5) == task.all_problems()[:5]
    shuffled = GSM8KTask(path=gsm8k_dir / "test.jsonl", shuffle=True)
    assert shuffled.problems(20, seed=1) == shuffled.problems(20, seed=1)
    assert shuffled.problems(20, seed=1) != shuffled.problems(20, seed=2)
    assert shuffled.problems(20, seed=1) != task.problems(20)


def test_prompt_is_few_shot_chain_of_thought(task: GSM8KTask) -> None:
    problem = task.problems(1)[0]
    prompt = task.prompt(problem)
    assert prompt.endswith(f"Question: {problem.inputs['question']}\nAnswer:")
    assert prompt.count("The answer is ") == len(EXEMPLARS)
    assert task.sampling().stop and "\n\n" in task.sampling().stop
    zero_shot = GSM8KTask(path=task.path, shots=0)
    assert zero_shot.prompt(problem) == f"Question: {problem.inputs['question']}\nAnswer:"


def test_exemplars_are_not_test_problems(task: GSM8KTask) -> None:
    questions = {p.inputs["question"] for p in task.all_problems()}
    for question, steps, answer in EXEMPLARS:
        assert question not in questions
        assert GSM8KTask.extract(task, f"{steps} The answer is {answer}.") == answer


def test_extraction_agrees_with_the_papers_grading(gsm8k_dir: Path, task: GSM8KTask) -> None:
    """Real GPT-3 solutions with the GSM8K authors' verdicts: our extract+check must agree."""
    problems = task.all_problems()
    total = agree = 0
    lines = (gsm8k_dir / "example_model_solutions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(problems)
    for problem, line in zip(problems, lines):
        record = json.loads(line)
        assert record["question"] == problem.inputs["question"]  # same line order as test.jsonl
        for sample in (v for v in record.values() if isinstance(v, dict)):
            total += 1
            agree += task.check(task.extract(sample["solution"]), problem) == sample["is_correct"]
    rate = agree / total
    print(f"GSM8K extraction agreement: {100 * rate:.2f}% of {total} solutions")
    assert total == 4 * 1319
    assert rate >= 0.99


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" She makes 9 * 2 = $18 every day. The answer is 18.", "18"),
        (" The profit is $70,000. The answer is $70,000.", "70000"),
        (" Each costs 18.00 dollars. The answer is 18.00", "18"),
        (" He walks 3 * 2 = 6 miles.", "6"),
        (" The answer is -4.", "-4"),
        (" The answer is 0.50.", "0.5"),
        (" I am not sure.", None),
    ],
)
def test_extract_model_answers(task: GSM8KTask, text: str, expected: str | None) -> None:
    assert task.extract(text) == expected


def test_check_compares_canonical_numbers(task: GSM8KTask) -> None:
    problem = task.all_problems()[2]  # reference 70000
    assert task.check(task.extract("The answer is $70,000.00."), problem)
    assert not task.check(task.extract("The answer is 7000."), problem)


def test_needs_a_path() -> None:
    with pytest.raises(ConfigError, match="path"):
        create_task("gsm8k")
    with pytest.raises(ConfigError, match="not found"):
        create_task("gsm8k", path="/nonexistent/gsm8k/test.jsonl")


def test_config_rebuilds_the_task(task: GSM8KTask) -> None:
    config = task.config()
    rebuilt = create_task(config.pop("name"), **config)
    assert rebuilt.problems(3) == task.problems(3)
    assert rebuilt.prompt(task.problems(1)[0]) == task.prompt(task.problems(1)[0])


GOOD = {"question": "What is 2 + 2?", "answer": "2 + 2 = 4\n#### 4"}


def write_lines(path: Path, bad_line: str) -> Path:
    lines = [json.dumps(GOOD), json.dumps(GOOD), bad_line, json.dumps(GOOD)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("bad_line", "detail"),
    [
        ('{"question": "What is 2 + 2?", "answer": "#### 4"', "not valid JSON"),
        (json.dumps({"question": "What is 2 + 2?"}), "no field 'answer'"),
        (json.dumps({"answer": "#### 4"}), "no field 'question'"),
        (json.dumps({"question": "What is 2 + 2?", "answer": "2 + 2 = 4"}), "####"),
        (json.dumps({"question": "What is 2 + 2?", "answer": "#### four"}), "not a number"),
        (json.dumps(["What is 2 + 2?", "#### 4"]), "JSON object"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str, detail: str) -> None:
    path = write_lines(tmp_path / "bad.jsonl", bad_line)
    task = GSM8KTask(path=path)
    with pytest.raises(DatasetError) as caught:
        task.problems(10)
    message = str(caught.value)
    assert str(path) in message
    assert "line 3" in message
    assert detail in message


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    path = tmp_path / "gaps.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + json.dumps(GOOD) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="line 4"):
        GSM8KTask(path=path).problems(10)

"""The generic JSONL task: configurable fields, patterns, template and comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oomlab.errors import ConfigError, DatasetError
from oomlab.tasks import create_task
from oomlab.tasks.jsonl import JsonlTask


def write(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_defaults_read_question_and_answer(tmp_path: Path) -> None:
    path = write(tmp_path / "qa.jsonl", [
        {"question": "Two dozen?", "answer": "24"},
        {"question": "A thousand?", "answer": "1,000.00"},
        {"question": "GSM8K style?", "answer": "6 * 7 = 42\n#### 42"},
        {"question": "As a JSON number?", "answer": 3.50},
    ])
    task = create_task("jsonl", path=str(path))
    problems = task.problems(10)
    assert [p.reference for p in problems] == ["24", "1000", "42", "3.5"]
    assert [p.id for p in problems] == ["qa-0", "qa-1", "qa-2", "qa-3"]
    assert task.prompt(problems[0]) == "Question: Two dozen?\nAnswer:"
    assert task.check(task.extract(" It is 1,000. The answer is 1000."), problems[1])
    assert task.check(task.extract(" 3.50 dollars"), problems[3])
    assert not task.check(task.extract(" 41"), problems[2])


def test_custom_fields_patterns_and_template(tmp_path: Path) -> None:
    path = write(tmp_path / "custom.jsonl", [
        {"context": "Ann has 3 cats.", "prompt": "How many cats?", "target": "Reasoning... ANSWER: 3", "level": 1},
        {"context": "Bob has 2 dogs.", "prompt": "How many legs?", "target": "2 * 4 ANSWER: 8", "level": 2},
    ])
    task = JsonlTask(
        path=path,
        question_field="prompt",
        answer_field="target",
        answer_pattern=r"ANSWER:\s*(\d+)",
        extract_pattern=r"Final:\s*(-?[\d.]+)",
        template="{context}\nQ: {question}\nA:",
        difficulty_field="level",
    )
    first, second = task.problems(2)
    assert (first.reference, second.reference) == ("3", "8")
    assert task.prompt(second) == "Bob has 2 dogs.\nQ: How many legs?\nA:"
    assert "target" not in second.inputs
    assert (first.difficulty, second.difficulty) == (1, 2)
    assert task.extract("I think 7. Final: 8.0, not 9") == "8"
    assert task.check(task.extract("Final: 8"), second)
    assert task.extract("The answer is 8.") is None  # only the pattern counts


def test_text_answers_with_numeric_false(tmp_path: Path) -> None:
    path = write(tmp_path / "capitals.jsonl", [
        {"q": "Capital of France?", "a": "Paris"},
        {"q": "Capital of Peru?", "a": " Lima "},
    ])
    task = JsonlTask(path=path, question_field="q", answer_field="a", numeric=False,
                     extract_pattern=r"(?i)capital is (\w+)")
    france, peru = task.problems(2)
    assert peru.reference == "Lima"
    assert task.check(task.extract("The capital is Paris."), france)
    assert not task.check(task.extract("The capital is paris."), france)  # exact: case matters
    plain = JsonlTask(path=path, question_field="q", answer_field="a", numeric=False)
    assert plain.extract(" Lima\nNext question") == "Lima"
    assert plain.extract("   ") is None


def test_seeded_shuffle(tmp_path: Path) -> None:
    path = write(tmp_path / "many.jsonl", [{"question": f"q{i}", "answer": str(i)} for i in range(50)])
    ordered = JsonlTask(path=path)
    assert [p.reference for p in ordered.problems(3, seed=5)] == ["0", "1", "2"]
    shuffled = JsonlTask(path=path, shuffle=True)
    assert shuffled.problems(10, seed=5) == shuffled.problems(10, seed=5)
    assert shuffled.problems(10, seed=5) != shuffled.problems(10, seed=6)
    assert len(shuffled.problems(500)) == 50


@pytest.mark.parametrize(
    ("options", "bad_record", "detail"),
    [
        ({}, None, "not valid JSON"),
        ({}, {"question": "q"}, "no field 'answer'"),
        ({"question_field": "prompt"}, {"question": "q", "answer": "1"}, "no field 'prompt'"),
        ({"answer_pattern": r"ANSWER: (\d+)"}, {"question": "q", "answer": "1"}, "no match"),
        ({}, {"question": "q", "answer": "one"}, "not a number"),
        ({}, {"question": {"text": "q"}, "answer": "1"}, "not text"),
    ],
)
def test_malformed_line_names_file_and_line(
    tmp_path: Path, options: dict[str, str], bad_record: dict[str, object] | None, detail: str
) -> None:
    good = {"question": "q", "answer": "ANSWER: 1" if "answer_pattern" in options else "1", "prompt": "q"}
    bad = "{broken" if bad_record is None else json.dumps(bad_record)
    path = tmp_path / "data.jsonl"
    path.write_text(f"{json.dumps(good)}\n{json.dumps(good)}\n{bad}\n", encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        JsonlTask(path=path, **options).problems(5)
    assert str(path) in str(caught.value)
    assert "line 3" in str(caught.value)
    assert detail in str(caught.value)


def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "ok.jsonl", [{"question": "q", "answer": "1"}])
    with pytest.raises(ConfigError, match="regular expression"):
        JsonlTask(path=path, extract_pattern="(unclosed")
    with pytest.raises(ConfigError, match="groups"):
        JsonlTask(path=path, answer_pattern=r"(\d+) and (\d+)")
    with pytest.raises(ConfigError, match="path"):
        JsonlTask()
    task = JsonlTask(path=path, template="{question} {missing}")
    with pytest.raises(ConfigError, match="missing"):
        task.prompt(task.problems(1)[0])


def test_config_rebuilds_the_task(tmp_path: Path) -> None:
    path = write(tmp_path / "ok.jsonl", [{"question": "q", "answer": "ANSWER: 1"}])
    task = JsonlTask(path=path, answer_pattern=r"ANSWER: (\d+)", template="Q: {question}\nA:", shuffle=True)
    config = task.config()
    rebuilt = create_task(config.pop("name"), **config)
    assert rebuilt.config() == task.config()
    assert rebuilt.problems(1) == task.problems(1)

"""GSM8K (Cobbe et al. 2021, arXiv 2110.14168) from a local copy of its JSONL.

Each line is `{"question": ..., "answer": ...}` and the answer's last line is
`#### N`. Nothing is downloaded: the user points `path` at their file.
The prompt is few-shot chain of thought ending in "The answer is N." (the
form of Wei et al. 2022, "Chain-of-Thought Prompting", exemplars in its appendix), so a base
model learns both to reason step by step and where to put its answer; the
exemplars are written for oomlab, not taken from the test split.

Extraction agreement with the graders of the GSM8K paper, measured on the
1,319 x 4 real model solutions in example_model_solutions.jsonl
(benchmarks/gsm8k_extraction.py): 100.00% (5,276 of 5,276).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.tasks.base import TASKS
from oomlab.tasks.jsonl import FINAL_ANSWER, JsonlTask

EXEMPLARS: tuple[tuple[str, str, str], ...] = (
    (
        "A baker makes 24 muffins in the morning and 18 in the afternoon. "
        "She sells 30 of them. How many muffins does she have left?",
        "She makes 24 + 18 = 42 muffins. After selling 30, she has 42 - 30 = 12 muffins left.",
        "12",
    ),
    (
        "Tom buys 3 notebooks for $4 each and a pen for $2. He pays with a $20 bill. "
        "How much change does he get?",
        "The notebooks cost 3 * 4 = $12. Together with the pen he spends 12 + 2 = $14. "
        "His change is 20 - 14 = $6.",
        "6",
    ),
    (
        "Maria has 5 boxes with 12 pencils in each. She gives a third of all her pencils "
        "to her brother. How many pencils does she keep?",
        "She has 5 * 12 = 60 pencils. A third of them is 60 / 3 = 20 pencils. "
        "She keeps 60 - 20 = 40 pencils.",
        "40",
    ),
    (
        "A train travels at 60 miles per hour for 2.5 hours and then at 40 miles per hour "
        "for 1 hour. How many miles does it travel in total?",
        "In the first part it travels 60 * 2.5 = 150 miles. In the second part it travels "
        "40 * 1 = 40 miles. In total it travels 150 + 40 = 190 miles.",
        "190",
    ),
)


@TASKS.register("gsm8k")
class GSM8KTask(JsonlTask):
    """Grade-school maths word problems; numeric answers, few-shot chain of thought."""

    description: ClassVar[str] = "GSM8K word problems from a local JSONL copy (path=...)"
    answer_hint: ClassVar[str] = " (a GSM8K answer ends with a line '#### N')"

    def __init__(self, path: str | Path | None = None, shots: int = 4, shuffle: bool = False) -> None:
        if not 0 <= shots <= len(EXEMPLARS):
            raise ConfigError(f"gsm8k shots must be between 0 and {len(EXEMPLARS)}, got {shots}")
        super().__init__(path=path, answer_pattern=FINAL_ANSWER, shuffle=shuffle)
        self.shots = shots
        self._fewshot = "".join(
            f"Question: {q}\nAnswer: {steps} The answer is {answer}.\n\n" for q, steps, answer in EXEMPLARS[:shots]
        )

    def problem_from(self, index: int, line_no: int, record: dict[str, Any]) -> Problem:
        """As for any JSONL, with the reference solution's step count as difficulty."""
        problem = super().problem_from(index, line_no, record)
        solution = str(record[self.answer_field])
        steps = sum(1 for line in solution.split("\n") if line.strip() and not line.lstrip().startswith("####"))
        return Problem(problem.id, problem.inputs, problem.reference, {**problem.metadata, "difficulty": steps})

    def id_prefix(self) -> str:
        return f"gsm8k-{self.path.stem}"

    def prompt(self, problem: Problem) -> str:
        return f"{self._fewshot}Question: {problem.inputs['question']}\nAnswer:"

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "shots": self.shots, "shuffle": self.shuffle}

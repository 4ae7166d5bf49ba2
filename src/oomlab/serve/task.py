"""The task a served request becomes: the client's prompt passed through, with an answer rule for voting.

A served request has no reference answer unless the client sends one (`oomlab.reference`), so
`check` is False without one: a served run's accuracy columns are then not a measurement, and
`oracle` strategies (which read the reference) are refused. With a reference they measure
accuracy on the client's own questions, the same as a sweep.

How a completion's answer is read (`answer`): `text` (default: the whole completion, stripped;
votes agree only on identical answers), `number` (the final number, canonical: "18.00" = "18"),
or `line` (the first non-empty line).
"""

from __future__ import annotations

from typing import Any, ClassVar

from oomlab.backends.base import SamplingParams
from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.tasks.base import Task
from oomlab.tasks.numeric import extract_number

ANSWER_RULES = ("text", "number", "line")


def read_answer(text: str, rule: str) -> str | None:
    if rule == "number":
        return extract_number(text)
    if rule == "line":
        line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        return line or None
    stripped = text.strip()
    return stripped or None


class ServedTask(Task):
    """One request's prompt as a task of one problem (not registered: a sweep has nothing to draw from it)."""

    name: ClassVar[str] = "served"
    description: ClassVar[str] = "a served request: the client's prompt, answered by a strategy"

    def __init__(self, prompt: str, sampling: SamplingParams, answer: str = "text", reference: str | None = None,
                 problem_id: str = "request"):
        if answer not in ANSWER_RULES:
            raise ConfigError(f"unknown answer rule '{answer}'; valid answer rules: {', '.join(ANSWER_RULES)}")
        self._prompt, self._sampling, self.answer_rule = prompt, sampling, answer
        self.reference = None if reference is None else read_answer(str(reference), answer)
        self.problem = Problem(problem_id, {"prompt": prompt}, self.reference or "", {"served": True})

    def problems(self, n: int, seed: int = 0) -> list[Problem]:
        return [self.problem][:n]

    def prompt(self, problem: Problem) -> str:
        return str(problem.inputs.get("prompt", self._prompt))

    def extract(self, text: str) -> str | None:
        return read_answer(text, self.answer_rule)

    def check(self, answer: str | None, problem: Problem) -> bool:
        """Right only against a reference the client sent; without one, False (nothing is measured)."""
        return self.reference is not None and answer is not None and answer == self.reference

    def sampling(self) -> SamplingParams:
        return self._sampling

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "answer": self.answer_rule, "reference": self.reference is not None}

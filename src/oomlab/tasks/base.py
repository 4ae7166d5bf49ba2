"""The Task interface: problems, a prompt, `extract(text)` and an exact `check`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from oomlab.backends.base import SamplingParams
from oomlab.problem import Problem
from oomlab.registry import Registry


class Task(ABC):
    """Subclass, set `name` via @TASKS.register, implement the four methods."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    # True when `check(answer, problem)` validates an answer against the problem's own constraints and
    # never reads `problem.reference` (Countdown: the numbers and the target). Such a checker is a
    # deployable verifier (the `check` scorer), not an oracle: unit tests for code are one.
    reference_free_check: ClassVar[bool] = False

    @abstractmethod
    def problems(self, n: int, seed: int = 0) -> list[Problem]:
        """The first n problems (generated tasks: seeded; file tasks: in file order, or a seeded sample)."""

    @abstractmethod
    def prompt(self, problem: Problem) -> str:
        """The full prompt text the model completes (few-shot examples included)."""

    @abstractmethod
    def extract(self, text: str) -> str | None:
        """The answer in a completion, canonicalised; None when there is none."""

    def check(self, answer: str | None, problem: Problem) -> bool:
        """Exact check of an extracted answer against the reference."""
        return answer is not None and answer == problem.reference

    def sampling(self) -> SamplingParams:
        """Defaults a sweep uses for this task (max tokens, stop strings)."""
        return SamplingParams(max_tokens=256, stop=("\n\n",))

    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this task; stored with the run."""
        return {"name": self.name}


TASKS: Registry[type[Task]] = Registry("task", "oomlab.tasks")


def create_task(name: str, **options: Any) -> Task:
    return TASKS.get(name)(**options)

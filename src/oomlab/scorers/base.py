"""The Scorer interface. An oracle scorer reads the reference answer: it measures coverage, not a deployable system."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from oomlab.backends.base import Generation
from oomlab.problem import Problem
from oomlab.registry import Registry

if TYPE_CHECKING:
    from oomlab.tasks.base import Task


@dataclass(frozen=True)
class Candidate:
    """A sample with its extracted answer, as a scorer sees it."""

    generation: Generation
    answer: str | None
    prompt: str = ""


class Scorer(ABC):
    name: ClassVar[str]
    oracle: ClassVar[bool] = False  # True when score() reads problem.reference
    needs_logprobs: ClassVar[bool] = False  # True when score() reads the generation's token log-probabilities
    description: ClassVar[str] = ""

    @abstractmethod
    def score(self, candidate: Candidate, problem: Problem, task: Task) -> float:
        """Higher is better. Any tokens a scorer spends must go through a backend the sweep meters."""

    def label(self) -> str:
        return f"{self.name} (oracle)" if self.oracle else self.name

    def config(self) -> dict[str, Any]:
        return {"name": self.name}


SCORERS: Registry[type[Scorer]] = Registry("scorer", "oomlab.scorers")


def create_scorer(name: str, **options: Any) -> Scorer:
    return SCORERS.get(name)(**options)

"""The Scorer interface. An oracle scorer reads the reference answer: it measures coverage, not a deployable system."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from oomlab.backends.base import Backend, Generation
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
    # What a score means, for strategies that turn scores into weights (particle filtering):
    probability: ClassVar[bool] = False  # scores are probabilities in [0, 1] (a PRM, the oracle, a judge)
    log_scale: ClassVar[bool] = False  # scores are log-probabilities (mean token log-probability)
    steps: ClassVar[bool] = False  # scores partial solutions meaningfully (a step scorer for tree search)

    @abstractmethod
    def score(self, candidate: Candidate, problem: Problem, task: Task) -> float:
        """Higher is better. Any tokens a scorer spends must go through a backend the sweep meters."""

    def score_many(self, candidates: list[Candidate], problem: Problem, task: Task) -> list[float]:
        """Scores of several candidates; a scorer that asks a server overrides this to ask concurrently."""
        return [self.score(c, problem, task) for c in candidates]

    @classmethod
    def check_task(cls, task: type[Task]) -> None:
        """Refuse, before anything is drawn, a task this scorer cannot score (ConfigError)."""

    def bind(self, backend: Backend) -> Scorer:
        """Spend through `backend` from now on (the sweep's metered one, so the spending is on the books)."""
        return self

    def take_generations(self) -> list[Generation]:
        """Generations this scorer caused since the last call (a judge's), for the caller's Attempt."""
        return []

    def take_usage(self) -> dict[str, float] | None:
        """What this scorer spent outside the generator since the last call (a PRM's tokens); None: nothing."""
        return None

    def label(self) -> str:
        return f"{self.name} (oracle)" if self.oracle else self.name

    def config(self) -> dict[str, Any]:
        return {"name": self.name}


SCORERS: Registry[type[Scorer]] = Registry("scorer", "oomlab.scorers")


def create_scorer(name: str, **options: Any) -> Scorer:
    return SCORERS.get(name)(**options)

"""The oracle scorer: 1 when the task's checker accepts the answer. Reads the reference answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from oomlab.problem import Problem
from oomlab.scorers.base import SCORERS, Candidate, Scorer

if TYPE_CHECKING:
    from oomlab.tasks.base import Task


@SCORERS.register("oracle")
class OracleScorer(Scorer):
    """A perfect verifier. Best-of-n with it measures coverage (pass@k), not a deployable system."""

    oracle: ClassVar[bool] = True
    description: ClassVar[str] = "1 if the task's checker accepts the answer, else 0 (reads the reference: coverage)"
    needs_logprobs: ClassVar[bool] = False
    probability: ClassVar[bool] = True

    def score(self, candidate: Candidate, problem: Problem, task: Task) -> float:
        return 1.0 if task.check(candidate.answer, problem) else 0.0

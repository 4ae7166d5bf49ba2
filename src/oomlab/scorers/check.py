"""The check scorer: a verifier that reads the problem, never its reference answer.

On a task where verifying is easier than solving (Countdown: a candidate expression is checked by
evaluating it against the given numbers and target), the task's own checker needs no reference
answer, and best-of-n with it is a deployable system, like unit tests selecting among sampled
programs (Brown et al. 2024, "Large Language Monkeys", arXiv 2407.21787). Where the checker is
exact, best-of-n[check] reaches pass@k: the coverage the oracle measures, bought without an oracle.

Tasks declare this with `Task.reference_free_check = True`; on any other task (arithmetic, GSM8K,
lab-sum: checking means comparing with the reference) this scorer refuses rather than pass an
oracle off as a verifier.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.scorers.base import SCORERS, Candidate, Scorer

if TYPE_CHECKING:
    from oomlab.tasks.base import Task

LABEL = "check (reads the problem, not the answer)"


def require_reference_free(task: Task) -> None:
    """Refuse a task whose checker needs the reference answer."""
    if not getattr(task, "reference_free_check", False):
        raise ConfigError(f"scorer 'check' needs a task whose checker reads only the problem; task '{task.name}' "
                          "checks an answer against its reference, so that would be an oracle: use scorer=oracle "
                          "to measure coverage")


@SCORERS.register("check")
class CheckScorer(Scorer):
    """1 if the task's reference-free checker accepts the answer, else 0. Not an oracle."""

    oracle: ClassVar[bool] = False
    description: ClassVar[str] = ("1 if the task's checker accepts the answer against the problem's own constraints "
                                  "(reads the problem, never the reference; tasks with reference_free_check only)")
    needs_logprobs: ClassVar[bool] = False
    probability: ClassVar[bool] = True

    @classmethod
    def check_task(cls, task: type[Task]) -> None:
        require_reference_free(task)  # type: ignore[arg-type]

    def score(self, candidate: Candidate, problem: Problem, task: Task) -> float:
        require_reference_free(task)
        return 1.0 if task.check(candidate.answer, problem) else 0.0

    def label(self) -> str:
        return f"{self.name} (reads the problem, not the answer)"

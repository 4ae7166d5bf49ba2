"""The logprob scorer: the model's own confidence, the mean token log-probability of the generation."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

from oomlab.problem import Problem
from oomlab.scorers.base import SCORERS, Candidate, Scorer

if TYPE_CHECKING:
    from oomlab.tasks.base import Task


@SCORERS.register("logprob")
class LogprobScorer(Scorer):
    """Mean per-token log-probability of the sampled completion (length-normalised sequence likelihood).

    A deployable verifier-free selector: it needs no reference answer, only the token
    log-probabilities the backend reports when asked (`GenRequest.logprobs`). A sample with no
    extracted answer, or without log-probabilities, scores -inf, so it is chosen only when nothing
    else is available.
    """

    description: ClassVar[str] = "mean token log-probability of the completion (model confidence; no reference)"
    needs_logprobs: ClassVar[bool] = True
    log_scale: ClassVar[bool] = True

    def score(self, candidate: Candidate, problem: Problem, task: Task) -> float:
        mean = candidate.generation.mean_logprob
        if candidate.answer is None or mean is None:
            return -math.inf
        return float(mean)

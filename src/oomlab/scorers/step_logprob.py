"""The step log-prob scorer: how likely the model finds a (partial) solution, token by token.

A process-level stand-in for a trained step verifier (a PRM, Lightman et al. 2023): the mean
token log-probability of the steps generated so far. It reads no reference answer, so a search
guided by it is deployable; it is also free, since the log-probabilities come with the samples.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

from oomlab.problem import Problem
from oomlab.scorers.base import SCORERS, Candidate, Scorer

if TYPE_CHECKING:
    from oomlab.tasks.base import Task


@SCORERS.register("step-logprob")
class StepLogprobScorer(Scorer):
    """Mean token log-probability of a partial solution's generated steps (higher is better).

    Unlike `logprob`, it scores partial solutions too: a candidate without an answer is not
    penalised, since mid-search it has none yet. A partial solution is an ordinary Candidate whose
    generation holds the steps so far and the log-probs of all their tokens (the search strategies
    build it: `StepSampler.candidate` in `strategies/search_tree.py`); one without log-probabilities
    scores -inf.
    """

    description: ClassVar[str] = "mean token log-probability of the steps so far (partial solutions too; no reference)"
    needs_logprobs: ClassVar[bool] = True
    log_scale: ClassVar[bool] = True
    steps: ClassVar[bool] = True

    def score(self, candidate: Candidate, problem: Problem, task: Task) -> float:
        mean = candidate.generation.mean_logprob
        return -math.inf if mean is None else float(mean)


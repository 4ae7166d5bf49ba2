"""Confidence-weighted voting: DeepConf, offline (Fu, Wang, Tian & Zhao 2025, "Deep Think with
Confidence", arXiv 2508.15260, §3).

Majority voting counts every trace alike; DeepConf weights each trace's vote by how confident the
model was while writing it, and can first drop the least confident traces:

    c_i       <- confidence of token i                                   (see below)
    C_G       <- mean of c_i over a sliding window G of `window` tokens   # group confidence
    C_t       <- one number per trace t (`measure`):
                 mean   (mean of all c_i)           lowest  (min over groups)
                 bottom10 (mean of the lowest 10% of groups)   tail (mean of the last window)
    kept      <- the ceil(keep * m) answered traces with highest C_t      # keep = 1: no filtering
    V(a)      <- sum over kept traces t answering a of w_t                # confidence-weighted vote
    answer    <- argmax_a V(a)                                            # ties: uniform, seeded

The paper's token confidence is the negative mean log-probability of the top-k tokens at each
position; the backends here return the log-probability of the sampled token only, so c_i is that
log-probability (higher is more confident, as the paper's). Weights must be positive, so a trace's
weight is w_t = exp(C_t), the geometric-mean probability of its tokens in the measured span;
filtering depends only on the order of C_t and is exactly the paper's rule. The paper's window is
2048 tokens for traces of many thousands; this default of 32 keeps several groups in completions
of a few hundred tokens. A trace without log-probabilities has weight 0 and is filtered first;
when every kept weight is 0 the vote is a plain count.

The ladder comes from ONE draw, as majority's does: rung k is the expected correctness of this
vote on a uniformly random k-subset of the draw, computed exactly over every subset when there
are at most 20,000 of them (every rung of an N <= 16 draw), otherwise as the mean over 20,000
subsets drawn uniformly with a fixed seed (standard error below 0.004).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from oomlab.errors import ConfigError
from oomlab.estimators import weighted_winners
from oomlab.problem import Problem
from oomlab.strategies.base import STRATEGIES, Draw, DrawStrategy

if TYPE_CHECKING:
    from oomlab.tasks.base import Task

MEASURES = ("mean", "lowest", "bottom10", "tail")
BOTTOM_FRACTION = 0.10  # "bottom 10% group confidence" (Fu et al. 2025, §3.1)


def group_confidences(logprobs: Sequence[float], window: int) -> list[float]:
    """Mean token confidence over each window of `window` consecutive tokens (one group if shorter)."""
    n = len(logprobs)
    if n <= window:
        return [sum(logprobs) / n]
    sums = [sum(logprobs[:window])]
    for i in range(window, n):
        sums.append(sums[-1] + logprobs[i] - logprobs[i - window])
    return [s / window for s in sums]


def trace_confidence(logprobs: Sequence[float] | None, measure: str, window: int) -> float:
    """One confidence per trace (higher: more confident); -inf for a trace without log-probabilities."""
    if not logprobs:
        return -math.inf
    if measure == "mean":
        return sum(logprobs) / len(logprobs)
    if measure == "tail":
        tail = logprobs[-window:]
        return sum(tail) / len(tail)
    groups = group_confidences(logprobs, window)
    if measure == "lowest":
        return min(groups)
    lowest = sorted(groups)[: max(1, math.ceil(BOTTOM_FRACTION * len(groups)))]
    return sum(lowest) / len(lowest)


@STRATEGIES.register("deepconf")
class DeepConf(DrawStrategy):
    description: ClassVar[str] = "confidence-weighted voting, least confident traces filtered (DeepConf, Fu et al. 2025)"
    knob: ClassVar[str] = "n"
    knob_help: ClassVar[str] = "number of samples that vote, each weighted by its token confidence"

    def __init__(self, measure: str = "bottom10", keep: float = 0.9, window: int = 32, temperature: float = 0.8):
        if measure not in MEASURES:
            raise ConfigError(f"deepconf measure must be one of {', '.join(MEASURES)}, got '{measure}'")
        if not 0.0 < keep <= 1.0:
            raise ConfigError(f"deepconf keep must lie in (0, 1], got {keep} (the paper uses 0.1 and 0.9)")
        if window < 1:
            raise ConfigError(f"deepconf window must be at least 1 token, got {window}")
        self.measure, self.keep, self.window, self.temperature = measure, keep, window, temperature

    def needs_logprobs(self) -> bool:
        return True

    def score(self, draw: Draw, problem: Problem, task: Task) -> tuple[float, ...]:
        """Each sample's trace confidence (the draw's scores, stored with the attempt)."""
        return tuple(trace_confidence(g.token_logprobs, self.measure, self.window) for g in draw.generations)

    def _confidences(self, draw: Draw) -> tuple[float, ...]:
        if draw.scores is None:
            raise ValueError("deepconf needs a scored draw; build it with make_draw()")
        return draw.scores

    def select(self, draw: Draw, seed: int = 0) -> int | None:
        """The first sample carrying the winning answer; a tie broken uniformly at random with `seed`."""
        winners = weighted_winners(range(draw.n), draw.answers, self._confidences(draw), self.keep)
        if not winners:
            return None
        return draw.answers.index(random.Random(seed).choice(winners))

    def estimator(self) -> dict[str, Any]:
        return {"name": "weighted-vote", "keep": self.keep}


    def config(self) -> dict[str, Any]:
        return {"name": self.name, "measure": self.measure, "keep": self.keep, "window": self.window,
                "temperature": self.temperature}

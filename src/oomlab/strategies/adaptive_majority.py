"""Adaptive consistency: sample until the vote is settled, not a fixed n.

Aggarwal et al. 2023, "Let's Sample Step by Step: Adaptive-Consistency for Efficient Reasoning
and Coding with LLMs" (arXiv 2305.11860), §2, with their Beta stopping criterion:

    votes = {}
    for i in 1..max_n (in batches of `batch` samples):
        a_i ~ M(x);  votes[a_i] += 1                 # samples without an answer abstain
        v1, v2 = the two largest vote counts (v2 = 0 when there is one answer)
        # the leader's share p1 / (p1 + p2) of the top two has posterior Beta(v1 + 1, v2 + 1)
        if P(p1 > p2 | v1, v2) = 1 - I_{1/2}(v1 + 1, v2 + 1) >= threshold: stop
    return the plurality answer                       # ties broken with the seed

With threshold 0.95 a unanimous vote stops after 4 samples (1 - 2^-5 > 0.95).

oomlab adds a second, documented rule for the opposite case, a model with no consensus: after
`min_n` samples, if the leader's share of ALL samples (abstentions included) has posterior
Beta(v1 + 1, n - v1 + 1) with P(share > 1/2) < `give_up`, sampling stops — no answer is
forming a majority, so further votes buy little accuracy (a plurality that keeps shifting is
rarely right). `give_up=0` turns it off and leaves Aggarwal et al.'s rule alone. The samples use
majority's seeds and sampling settings, so they are a prefix of majority's draw: in a sweep that
runs both, the cache serves them, and each rung's attempt still lists every sample it used.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import TYPE_CHECKING, Any, ClassVar

from scipy.stats import beta

from oomlab.backends.base import Backend, GenRequest, Generation, SamplingParams
from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.strategies.base import STRATEGIES, Attempt, Strategy, draw_seeds
from oomlab.strategies.revise import with_temperature

if TYPE_CHECKING:
    from oomlab.tasks.base import Task


def leader_probability(votes: Counter) -> float:
    """P(the leading answer's share exceeds the runner-up's) under a uniform prior: Beta(v1+1, v2+1) mass above 1/2.

    Aggarwal et al. 2023, §2.2 ("Beta"): only the top two counts matter. No votes at all: 0.5.
    """
    top = sorted(votes.values(), reverse=True)[:2] + [0, 0]
    v1, v2 = top[0], top[1]
    return float(beta.sf(0.5, v1 + 1, v2 + 1))


def should_stop(votes: Counter, threshold: float) -> bool:
    """The Beta stopping criterion: stop once the leader is ahead with posterior probability >= threshold."""
    return sum(votes.values()) > 0 and leader_probability(votes) >= threshold


def no_consensus(votes: Counter, n: int, give_up: float) -> bool:
    """P(leader's share of all n samples > 1/2) < give_up under Beta(v1 + 1, n - v1 + 1): no majority is forming."""
    v1 = max(votes.values(), default=0)
    return give_up > 0 and float(beta.sf(0.5, v1 + 1, n - v1 + 1)) < give_up


@STRATEGIES.register("adaptive-majority")
class AdaptiveMajority(Strategy):
    description: ClassVar[str] = (
        "self-consistency that stops sampling once a Beta posterior settles the vote (Aggarwal et al. 2023)"
    )
    knob: ClassVar[str] = "max_n"
    knob_help: ClassVar[str] = "cap on samples; it stops earlier once the vote is settled (samples used: trace['n'])"

    def __init__(self, threshold: float = 0.95, batch: int = 1, temperature: float = 0.8, give_up: float = 0.05,
                 min_n: int = 4):
        if not 0.5 < threshold < 1.0:
            raise ConfigError(f"adaptive-majority threshold must lie in (0.5, 1), got {threshold}")
        if batch < 1:
            raise ConfigError(f"adaptive-majority batch must be at least 1, got {batch}")
        self.threshold, self.batch, self.temperature = threshold, batch, temperature
        self.give_up, self.min_n = give_up, min_n

    def sampling(self, task: Task) -> SamplingParams:
        """Majority's settings: the task's, at this strategy's temperature."""
        return with_temperature(task.sampling(), self.temperature)

    def solve(self, problem: Problem, task: Task, backend: Backend, budget: int, seed: int = 0) -> Attempt:
        prompt, params = task.prompt(problem), self.sampling(task)
        seeds = draw_seeds(seed, budget)
        generations: list[Generation] = []
        answers: list[str | None] = []
        votes: Counter = Counter()
        settled, stop = False, "cap"
        while len(generations) < budget:
            batch = seeds[len(generations) : len(generations) + self.batch]
            for g in backend.generate(GenRequest(prompt, params, batch)):
                generations.append(g)
                answers.append(task.extract(g.text))
                if answers[-1] is not None:
                    votes[answers[-1]] += 1
            if should_stop(votes, self.threshold):
                settled, stop = True, "settled"
                break
            if len(generations) >= self.min_n and no_consensus(votes, len(generations), self.give_up):
                stop = "no-consensus"
                break
        answer = None
        if votes:
            top = max(votes.values())
            answer = random.Random(seed).choice([a for a, v in votes.items() if v == top])
        trace = {"n": len(generations), "max_n": budget, "settled": settled, "stop": stop,
                 "confidence": leader_probability(votes), "answers": answers}
        return Attempt(answer, task.check(answer, problem), tuple(generations), trace)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "threshold": self.threshold, "batch": self.batch, "temperature": self.temperature,
                "give_up": self.give_up, "min_n": self.min_n}

"""Particle filtering over reasoning steps (Puri et al. 2025, "A Probabilistic Inference Approach to
Inference-Time Scaling of LLMs using Particle-Based Monte Carlo Methods", arXiv 2502.01618, Alg. 1;
its reference code is Red-Hat-AI-Innovation-Team/its_hub, `ParticleFiltering`).

Search methods keep the top-scoring states and so trust an imperfect verifier completely; particle
filtering treats the verifier's scores as likelihoods and *resamples* in proportion to them, so a
state the verifier underrates still survives with some probability:

    particles <- N copies of the root                            # N: the budget
    for t = 1 .. depth:
        for each distinct open state s held by c particles:
            s + z_1 .. s + z_c, z ~ G(s)                          # ONE request of c next steps
        w_i <- softmax_i( logit(score(particle_i)) / tau )        # complete particles keep their weight
        particles <- N draws with replacement, P(i) = w_i        # multinomial resampling (seeded)
        if every particle is complete: break
    return the answer of the highest-weight particle (complete with an answer first)

Each iteration samples exactly one step per open particle (N at t = 1). The weight of a score is
the logit of a probability, as its_hub does with a PRM's score: the prm scorer's scores are
probabilities; the mean token log-probability of `step-logprob` (the default, free, no reference
read) is first exponentiated to the geometric-mean token probability. A scorer on another scale
is used as a log-weight directly. `weight_temperature` (tau) sharpens (< 1) or flattens (> 1) the
resampling; tau = 1 is the paper's.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import TYPE_CHECKING, Any, ClassVar

from oomlab.backends.base import Backend
from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.scorers.base import Scorer
from oomlab.strategies.base import STRATEGIES, Attempt, score_nodes, with_verifier_usage
from oomlab.strategies.search_tree import Node
from oomlab.strategies.step_search import StepSearch

if TYPE_CHECKING:
    from oomlab.tasks.base import Task

CLIP = 1e-7  # its_hub clips probabilities to [1e-7, 1 - 1e-7] before the logit


def log_weight(score: float | None, scorer: Scorer, temperature: float = 1.0) -> float:
    """A particle's log-weight: logit of its score as a probability (exp first for log-scale scorers)."""
    if score is None or math.isnan(score) or score == -math.inf:
        return -math.inf
    p = math.exp(score) if scorer.log_scale else score
    if scorer.probability or scorer.log_scale or 0.0 <= p <= 1.0:
        p = min(max(p, CLIP), 1.0 - CLIP)
        return math.log(p / (1.0 - p)) / temperature
    return score / temperature


def resampling_weights(log_weights: list[float]) -> list[float]:
    """softmax of the log-weights (shifted by the maximum); uniform when every particle has weight 0."""
    top = max(log_weights)
    if top == -math.inf:
        return [1.0 / len(log_weights)] * len(log_weights)
    w = [math.exp(lw - top) for lw in log_weights]
    total = sum(w)
    return [x / total for x in w]


@STRATEGIES.register("particle-filter")
class ParticleFilter(StepSearch):
    description: ClassVar[str] = ("particle filtering: steps resampled in proportion to a step scorer's weights "
                                  "(Puri et al. 2025)")
    knob: ClassVar[str] = "particles"
    knob_help: ClassVar[str] = "particles (one step sampled per open particle per iteration)"

    def __init__(self, depth: int = 4, delimiter: str = "\n", scorer: str = "step-logprob", temperature: float = 0.8,
                 max_step_tokens: int = 48, weight_temperature: float = 1.0, **scorer_options: Any):
        if depth < 1:
            raise ConfigError(f"particle-filter: depth must be at least 1, got {depth}")
        if not weight_temperature > 0:
            raise ConfigError(f"particle-filter: weight_temperature must be positive, got {weight_temperature}")
        self.depth, self.weight_temperature = depth, weight_temperature
        self.setup_search(delimiter, scorer, temperature, max_step_tokens, scorer_options)

    def solve(self, problem: Problem, task: Task, backend: Backend, budget: int, seed: int = 0) -> Attempt:
        if budget < 1:
            raise ConfigError(f"particle-filter: the budget must be at least 1 particle, got {budget}")
        search = self.sampler(problem, task, backend, seed)
        rng = random.Random(f"{seed}|{problem.id}|particle-filter")  # resampling: seeded, per problem
        particles: list[Node] = [search.tree.root] * budget
        sampled: list[int] = []
        for _ in range(self.depth):
            if all(p.complete for p in particles):
                break
            held = Counter(p.id for p in particles if not p.complete)  # c particles at one state: one request of c
            fresh = {node_id: search.expand(search.tree.nodes[node_id], c) for node_id, c in held.items()}
            sampled.append(sum(held.values()))
            score_nodes(search, [n for kids in fresh.values() for n in kids])
            moved = {node_id: iter(kids) for node_id, kids in fresh.items()}
            particles = [p if p.complete else next(moved[p.id]) for p in particles]
            weights = resampling_weights([self.log_weight(p) for p in particles])
            particles = rng.choices(particles, weights=weights, k=budget)
        copies = Counter(p.id for p in particles)
        for node_id, c in copies.items():
            search.tree.nodes[node_id].extra["particles"] = c
        final = self.choose(particles)
        search.tree.choose(final)
        trace = search.trace(particles=budget, sampled_per_iteration=sampled, weight_temperature=self.weight_temperature)
        return Attempt(final.answer, task.check(final.answer, problem), tuple(search.spent),
                       with_verifier_usage(trace, self.scorer))

    def log_weight(self, node: Node) -> float:
        return log_weight(node.score, self.scorer, self.weight_temperature)

    def choose(self, particles: list[Node]) -> Node:
        """The highest-weight particle (its_hub's argmax), complete with an answer first; older node on ties."""
        for pool in ([p for p in particles if p.complete and p.answer is not None],
                     [p for p in particles if p.complete], particles):
            if pool:
                return max(pool, key=lambda p: (self.log_weight(p), -p.id))
        raise ValueError("no particles")

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "depth": self.depth, **self.search_config(),
                "weight_temperature": self.weight_temperature, **self.scorer_options}

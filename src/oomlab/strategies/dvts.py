"""Diverse verifier tree search (DVTS; Beeching, Tunstall & Rush 2024, "Scaling test-time compute
with open models", Hugging Face blog, and its code, huggingface/search-and-learn).

Beam search keeps the best `width` beams of one shared pool, so a few high-scoring prefixes soon
crowd out the rest. DVTS splits the N beams into N / M independent subtrees and expands each one
greedily by the verifier, so the subtrees cannot collapse onto each other:

    subtrees <- ceil(N / M), their widths M_i summing to N      # N: the budget; M: beam_width
    chains   <- the root for every subtree                        # the task's few-shot prompt
    for t = 1 .. depth:
        for each subtree i whose chain is not complete:
            candidates_i <- M_i next steps sampled after chain_i  # ONE request (at t = 1 one request of N)
        score every candidate with the step scorer                # ONE batch (a PRM: concurrent requests)
        chain_i <- the best of candidates_i                       # greedy, per subtree
    return the answer of the best complete chain (else of the best chain)

So every iteration samples exactly the widths of the subtrees still open: N step samples at
t = 1, fewer as subtrees finish. The step scorer is any that scores partial solutions: `prm`
(settings as `scorer_*` options) or the free `step-logprob` (the default, no reference read);
search-and-learn's `lookahead` rollouts are not implemented (their lookahead 0).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from oomlab.backends.base import Backend
from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.strategies.base import STRATEGIES, Attempt, score_nodes, with_verifier_usage
from oomlab.strategies.search_tree import Node, best_final, rank_key
from oomlab.strategies.step_search import StepSearch

if TYPE_CHECKING:
    from oomlab.tasks.base import Task


def subtree_widths(n: int, beam_width: int) -> list[int]:
    """N beams in ceil(N / M) subtrees, as even as possible: (10, 4) -> [4, 3, 3]; (2, 4) -> [2]."""
    count = math.ceil(n / beam_width)
    return [n // count + (1 if i < n % count else 0) for i in range(count)]


@STRATEGIES.register("dvts")
class DVTS(StepSearch):
    description: ClassVar[str] = ("diverse verifier tree search: N/M subtrees, each expanded greedily by a step scorer "
                                  "(Beeching et al. 2024)")
    knob: ClassVar[str] = "n"
    knob_help: ClassVar[str] = "step samples per iteration, split into subtrees of `beam_width`"

    def __init__(self, beam_width: int = 4, depth: int = 4, delimiter: str = "\n", scorer: str = "step-logprob",
                 temperature: float = 0.8, max_step_tokens: int = 48, **scorer_options: Any):
        if beam_width < 1 or depth < 1:
            raise ConfigError(f"dvts: beam_width and depth must be at least 1 (got {beam_width}, {depth})")
        self.beam_width, self.depth = beam_width, depth
        self.setup_search(delimiter, scorer, temperature, max_step_tokens, scorer_options)

    def solve(self, problem: Problem, task: Task, backend: Backend, budget: int, seed: int = 0) -> Attempt:
        if budget < 1:
            raise ConfigError(f"dvts: the budget must be at least 1 beam, got {budget}")
        search = self.sampler(problem, task, backend, seed)
        widths = subtree_widths(budget, self.beam_width)
        starts = [sum(widths[:i]) for i in range(len(widths))]  # subtree i's seed indices: its own, even at a shared state
        chains: list[Node] = [search.tree.root] * len(widths)
        sampled: list[int] = []  # step samples per iteration, for the trace
        for t in range(self.depth):
            open_ = [i for i, c in enumerate(chains) if not c.complete]
            if not open_:
                break
            if t == 0:  # every subtree starts at the root: one request of N shares the prompt
                children = search.expand(search.tree.root, budget)
                candidates = {i: children[starts[i] : starts[i] + widths[i]] for i in open_}
            else:
                candidates = {i: search.expand(chains[i], widths[i], first=starts[i]) for i in open_}
            sampled.append(sum(len(c) for c in candidates.values()))
            score_nodes(search, [n for c in candidates.values() for n in c])
            for i, kids in candidates.items():
                chains[i] = min(kids, key=rank_key)  # greedy by the verifier
        final = best_final(chains)
        search.tree.choose(final)
        trace = search.trace(n=budget, beam_width=self.beam_width, subtrees=widths, sampled_per_iteration=sampled,
                             chains=[c.id for c in chains])
        return Attempt(final.answer, task.check(final.answer, problem), tuple(search.spent),
                       with_verifier_usage(trace, self.scorer))

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "beam_width": self.beam_width, "depth": self.depth, **self.search_config(),
                **self.scorer_options}

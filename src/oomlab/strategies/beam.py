"""Step-level beam search guided by a step scorer (Snell et al. 2024, arXiv 2408.03314, §5.2;
Xie et al. 2023, arXiv 2305.00633).

    beams <- [root]                                   # the task's few-shot prompt
    for t = 1 .. depth:
        pool <- the complete beams                    # finished solutions stay in the running
        for each open beam s:
            pool += [s + z for z in G(s, expand)]      # ONE request: `expand` sampled next steps
        beams <- the `width` best of pool by scorer(s) # duplicates of a solution count once
        if every beam is complete: break
    return the answer of the best complete beam (else of the best beam)

Steps end at the delimiter (a newline by default); the default scorer is the mean token
log-probability of the steps so far (`step-logprob`), so no reference answer is read. With
`scorer=oracle` the search measures coverage and is labelled so; with `scorer=prm` (settings as
`scorer_*` options) a process reward model ranks the beams, each step's pool scored in one
concurrent batch, its tokens booked as the verifier's. Tasks whose answers are one line
(arithmetic, Game of 24 'direct') complete after one step: then beam search is best-of-`expand`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from oomlab.backends.base import Backend
from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.strategies.base import STRATEGIES, Attempt, score_nodes, with_verifier_usage
from oomlab.strategies.search_tree import Node, best_final, rank_key
from oomlab.strategies.step_search import StepSearch

if TYPE_CHECKING:
    from oomlab.tasks.base import Task


@STRATEGIES.register("beam")
class BeamSearch(StepSearch):
    description: ClassVar[str] = "step-level beam search: the `width` best partial solutions by a step scorer (Snell et al. 2024)"
    knob: ClassVar[str] = "width"
    knob_help: ClassVar[str] = "beams kept per step (each expanded by `expand` sampled steps, default = width)"

    def __init__(self, depth: int = 4, expand: int | None = None, delimiter: str = "\n", scorer: str = "step-logprob",
                 temperature: float = 0.8, max_step_tokens: int = 48, **scorer_options: Any):
        if depth < 1 or (expand is not None and expand < 1):
            raise ConfigError(f"beam: depth and expand must be at least 1 (got depth={depth}, expand={expand})")
        self.depth, self.expand = depth, expand
        self.setup_search(delimiter, scorer, temperature, max_step_tokens, scorer_options)

    def solve(self, problem: Problem, task: Task, backend: Backend, budget: int, seed: int = 0) -> Attempt:
        width, expand = budget, self.expand or budget
        search = self.sampler(problem, task, backend, seed)
        beams: list[Node] = [search.tree.root]
        for _ in range(self.depth):
            pool = [b for b in beams if b.complete]
            for beam in (b for b in beams if not b.complete):
                pool += search.expand(beam, expand)
            seen: set[str] = set()
            unique = []
            for node in pool:
                text = search.tree.solution(node)
                if text not in seen:
                    seen.add(text)
                    unique.append(node)
            score_nodes(search, unique)  # one batch: a PRM scores the whole pool concurrently
            beams = sorted(unique, key=rank_key)[:width]
            if all(b.complete for b in beams):
                break
        final = best_final(beams)
        search.tree.choose(final)
        return Attempt(final.answer, task.check(final.answer, problem), tuple(search.spent),
                       with_verifier_usage(search.trace(width=width, expand=expand), self.scorer))

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "depth": self.depth, "expand": self.expand, **self.search_config(),
                **self.scorer_options}

"""Best-of-n: sample n answers, score each with a verifier, return the best (Cobbe et al. 2021, arXiv 2110.14168).

With the oracle scorer (the task's own checker) it measures coverage, pass@k (Brown et al. 2024,
"Large Language Monkeys", arXiv 2407.21787): what a perfect verifier could pick, not what a
deployed system achieves, so it is labelled "(oracle)" everywhere. Any scorer works, with its
settings as `scorer_*` options: `-s best-of-n:scorer=prm,scorer_base_url=http://127.0.0.1:8000`
ranks the draw by a process reward model (scored concurrently; its tokens booked as the verifier's).
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any, ClassVar

from oomlab.backends.base import Backend, Generation
from oomlab.problem import Problem
from oomlab.scorers import Candidate
from oomlab.strategies.base import STRATEGIES, Draw, DrawStrategy, make_scorer

if TYPE_CHECKING:
    from oomlab.tasks.base import Task


@STRATEGIES.register("best-of-n")
class BestOfN(DrawStrategy):
    description: ClassVar[str] = "n samples, each scored by a scorer (verifier); the highest-scoring answer wins"
    knob: ClassVar[str] = "n"
    knob_help: ClassVar[str] = "number of samples scored"

    def __init__(self, scorer: str = "oracle", temperature: float = 0.8, **scorer_options: Any):
        self.scorer = make_scorer(self.name, scorer, scorer_options)
        self.scorer_options = scorer_options
        self.temperature = temperature

    @property
    def oracle(self) -> bool:
        return self.scorer.oracle

    def label(self) -> str:
        base = f"{self.name}[{self.scorer.name}]"
        return f"{base} (oracle)" if self.oracle else base

    def bind(self, backend: Backend) -> None:
        self.scorer.bind(backend)

    def extra_generations(self) -> list[Generation]:
        return list(self.scorer.take_generations())

    def needs_logprobs(self) -> bool:
        return bool(getattr(self.scorer, "needs_logprobs", False))

    def score(self, draw: Draw, problem: Problem, task: Task) -> tuple[float, ...]:
        prompt = task.prompt(problem)
        candidates = [Candidate(g, a, prompt) for g, a in zip(draw.generations, draw.answers)]
        return tuple(float(s) for s in self.scorer.score_many(candidates, problem, task))

    def _scores(self, draw: Draw) -> tuple[float, ...]:
        if draw.scores is None:
            raise ValueError("best-of-n needs a scored draw; build it with make_draw()")
        if any(math.isnan(s) for s in draw.scores):
            raise ValueError(f"scorer '{self.scorer.name}' returned NaN; a missing score should be -inf")
        return draw.scores

    def select(self, draw: Draw, seed: int = 0) -> int | None:
        """The highest-scoring sample; ties broken uniformly at random with `seed` (what best-of-k assumes)."""
        scores = self._scores(draw)
        if not scores:
            return None
        top = max(scores)
        return random.Random(seed).choice([i for i, s in enumerate(scores) if s == top])

    def estimate(self, draw: Draw, k: int) -> float:
        """Exact expected correctness of the pick on a random k-subset: pass@k for the oracle, else best-of-k."""
        if self.scorer.name != "oracle":
            self._scores(draw)  # a scored draw without NaN
        return super().estimate(draw, k)

    def take_verifier_usage(self) -> dict[str, float] | None:
        return self.scorer.take_usage()

    def estimator(self) -> dict[str, Any]:
        # a perfect binary verifier picks a correct sample whenever there is one: pass@k
        return {"name": "pass"} if self.scorer.name == "oracle" else {"name": "best-of-k"}

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "scorer": self.scorer.name, "temperature": self.temperature, **self.scorer_options}

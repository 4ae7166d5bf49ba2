"""What the scored step-level searches share (beam, dvts, particle-filter, mcts): one place for it.

Each of them ranks partial solutions by a step scorer (the mean step log-probability unless told
otherwise), ends steps at a delimiter, samples steps at one temperature and length, and labels
itself by its scorer, "(oracle)" included when the scorer reads the reference. Only the search
itself differs, so only the search lives in each strategy's own module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oomlab.backends.base import Backend
from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.strategies.base import Strategy, make_scorer
from oomlab.strategies.search_tree import StepSampler

if TYPE_CHECKING:
    from oomlab.tasks.base import Task

DEFAULT_STEP_SCORER = "step-logprob"


class StepSearch(Strategy):
    """A search over reasoning steps ranked by a scorer; subclasses call `setup_search` in __init__."""

    def setup_search(self, delimiter: str, scorer: str, temperature: float, max_step_tokens: int,
                     scorer_options: dict[str, Any]) -> None:
        if not delimiter:
            raise ConfigError(f"{self.name}: the step delimiter must not be empty")
        self.delimiter = delimiter
        self.scorer = make_scorer(self.name, scorer, scorer_options)
        self.scorer_options = scorer_options
        self.temperature, self.max_step_tokens = temperature, max_step_tokens

    @property
    def oracle(self) -> bool:
        return self.scorer.oracle

    def label(self) -> str:
        base = self.name if self.scorer.name == DEFAULT_STEP_SCORER else f"{self.name}[{self.scorer.name}]"
        return f"{base} (oracle)" if self.oracle else base

    def sampler(self, problem: Problem, task: Task, backend: Backend, seed: int, **options: Any) -> StepSampler:
        """One solve's StepSampler, with the scorer bound to this (metered) backend."""
        self.scorer.bind(backend)
        return StepSampler(task, problem, backend, self.scorer, seed, delimiter=self.delimiter,
                           temperature=self.temperature, max_step_tokens=self.max_step_tokens, **options)

    def search_config(self) -> dict[str, Any]:
        """The shared settings as `config()` records them (a subclass adds its own and the scorer's options)."""
        return {"delimiter": self.delimiter, "scorer": self.scorer.name, "temperature": self.temperature,
                "max_step_tokens": self.max_step_tokens}

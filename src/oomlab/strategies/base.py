"""The Strategy interface.

Two families:
- `DrawStrategy` (greedy, sample, majority, best-of-n): every rung k of the budget ladder is
  estimated exactly from ONE draw of N >= k samples per problem, so a full ladder costs N samples.
- `Strategy` (search, revision, scaffolds, ...): each rung is run for real with its own budget.

Strategies only ever see a metered backend (the sweep's), so every token they cause is on the books.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from oomlab.backends.base import Backend, GenRequest, Generation, SamplingParams
from oomlab.errors import ConfigError
from oomlab.draws import Draw, draw_trace
from oomlab.estimators import estimate
from oomlab.problem import Problem
from oomlab.registry import Registry
from oomlab.scorers.base import Scorer, create_scorer

if TYPE_CHECKING:
    from oomlab.strategies.search_tree import Node, StepSampler
    from oomlab.tasks.base import Task


@dataclass(frozen=True)
class Attempt:
    """A strategy's final answer on one problem, with every generation it caused."""

    answer: str | None
    correct: bool
    generations: tuple[Generation, ...] = ()
    trace: dict[str, Any] = field(default_factory=dict)


class Strategy(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    knob: ClassVar[str] = "n"  # what the budget counts
    knob_help: ClassVar[str] = "number of samples"

    @property
    def oracle(self) -> bool:
        """True when the strategy reads the reference answer (then it measures coverage, not accuracy)."""
        return False

    def label(self) -> str:
        return f"{self.name} (oracle)" if self.oracle else self.name

    def bind(self, backend: Backend) -> None:
        """Hand the (metered) backend to parts that spend tokens of their own, e.g. a judge scorer."""

    def budgets(self, ladder: list[int]) -> list[int]:
        """The rungs of the ladder this strategy runs at."""
        return ladder

    @abstractmethod
    def solve(self, problem: Problem, task: Task, backend: Backend, budget: int, seed: int = 0) -> Attempt:
        """Spend `budget` on `problem` and return the final answer."""

    def config(self) -> dict[str, Any]:
        """The strategy's name and settings, as the run's strategy record stores them."""
        return {"name": self.name}

    def record(self) -> dict[str, Any]:
        """What analysis needs to know of this strategy, written into the run at sweep time."""
        return {"name": self.name, "label": self.label(), "oracle": self.oracle, "kind": "rerun", "knob": self.knob,
                "options": self.config()}


class DrawStrategy(Strategy):
    """A strategy whose ladder is estimated from one draw; subclasses define selection and its expectation."""

    temperature: float = 0.8

    def sampling(self, task: Task) -> SamplingParams:
        base = task.sampling()
        return SamplingParams(
            temperature=self.temperature,
            max_tokens=base.max_tokens,
            top_k=base.top_k,
            top_p=base.top_p,
            stop=base.stop,
        )

    def needs_logprobs(self) -> bool:
        return False

    def score(self, draw: Draw, problem: Problem, task: Task) -> tuple[float, ...] | None:
        """Per-sample scores (best-of-n); None when the strategy does not score."""
        return None

    def make_draw(self, generations: list[Generation], problem: Problem, task: Task) -> Draw:
        answers = tuple(task.extract(g.text) for g in generations)
        correct = tuple(task.check(a, problem) for a in answers)
        draw = Draw(tuple(generations), answers, correct)
        scores = self.score(draw, problem, task)
        return Draw(draw.generations, answers, correct, scores)

    @abstractmethod
    def select(self, draw: Draw, seed: int = 0) -> int | None:
        """Index of the sample whose answer this strategy returns (None: no answer)."""

    def estimator(self) -> dict[str, Any]:
        """The estimator of rung k from one draw, as a record (`oomlab.estimators.estimate` reads it).

        Written into the run at sweep time, so analysis reads a run without rebuilding this object.
        """
        raise NotImplementedError(f"{type(self).__name__} must name its estimator (see oomlab.estimators)")

    def estimate(self, draw: Draw, k: int) -> float:
        """Expected correctness of `select` on a uniformly random k-subset of the draw (exact)."""
        return estimate(self.estimator(), draw.answers, draw.correct, draw.scores, k)

    def draw(self, problem: Problem, task: Task, backend: Backend, n: int, seed: int = 0) -> Draw:
        """This strategy's draw of n samples of `problem`, answers extracted, checked and scored.

        The one place a draw is made: `solve` and the sweep's attempt runner both call it, so the
        samples a ladder is estimated from are the samples a deployment at budget n would draw.
        """
        self.bind(backend)
        request = GenRequest(task.prompt(problem), self.sampling(task), draw_seeds(seed, n),
                             logprobs=self.needs_logprobs())
        return self.make_draw(backend.generate(request), problem, task)

    def solve(self, problem: Problem, task: Task, backend: Backend, budget: int, seed: int = 0) -> Attempt:
        draw = self.draw(problem, task, backend, budget, seed)
        i = self.select(draw, seed)
        answer = None if i is None else draw.answers[i]
        spent = draw.generations + tuple(self.extra_generations())
        return Attempt(answer, task.check(answer, problem), spent, draw_trace(draw))

    def extra_generations(self) -> list[Generation]:
        """Generations spent beyond the draw (a judge's) since the last call: what `Attempt.generations`
        reports beside the draw. The books never read it: a judge bound to the metered backend is
        served by it, so the sweep counts its samples where it counts every other."""
        return []

    def take_verifier_usage(self) -> dict[str, float] | None:
        """What a verifier scoring this strategy's draws spent outside the generator since the last call."""
        return None

    def record(self) -> dict[str, Any]:
        return {**super().record(), "kind": "draw", "estimator": self.estimator(),
                "sampling": {"temperature": self.temperature}, "logprobs": self.needs_logprobs()}


def draw_seeds(seed: int, n: int) -> tuple[int, ...]:
    """Seeds of a draw: sample i of every problem uses the same seed, so draws nest (N=8 is a prefix of N=16)."""
    return tuple(seed * 1_000_003 + i for i in range(n))


SCORER_PREFIX = "scorer_"  # strategy options with this prefix configure its scorer: scorer_base_url=...


def make_scorer(strategy: str, scorer: str, options: dict[str, Any]) -> Scorer:
    """The scorer a strategy names, configured by the strategy's `scorer_*` options (any other is a typo).

    `-s beam:scorer=prm,scorer_base_url=http://127.0.0.1:8000,scorer_aggregation=min` gives the
    prm scorer base_url and aggregation, so a scorer with settings needs no syntax of its own.
    """
    unknown = sorted(k for k in options if not k.startswith(SCORER_PREFIX))
    if unknown:
        raise ConfigError(f"{strategy}: unknown option(s) {', '.join(unknown)} (scorer settings take the prefix "
                          f"'{SCORER_PREFIX}', e.g. {SCORER_PREFIX}base_url=...)")
    settings = {k.removeprefix(SCORER_PREFIX): v for k, v in options.items()}
    try:
        return create_scorer(scorer, **settings)
    except TypeError as e:  # an option the scorer does not take
        raise ConfigError(f"{strategy}: scorer '{scorer}' does not take {', '.join(sorted(settings))}: {e}") from None


def score_nodes(search: StepSampler, nodes: list[Node]) -> None:
    """Score a step search's unscored nodes in one batch (a PRM asks its server for them concurrently).

    As `StepSampler.score` does for one node: the value is stored on the node, NaN counts as -inf.
    """
    todo = [n for n in nodes if n.score is None]
    if not todo:
        return
    if search.scorer is None:
        raise ValueError("this search was set up without a scorer")
    values = search.scorer.score_many([search.candidate(n) for n in todo], search.problem, search.task)
    for node, value in zip(todo, values, strict=True):
        v = float(value)
        node.score = -math.inf if math.isnan(v) else v


def with_verifier_usage(trace: dict[str, Any], scorer: Scorer) -> dict[str, Any]:
    """The trace, with what the scorer spent outside the generator in this attempt (a PRM's tokens), if anything."""
    usage = scorer.take_usage()
    if usage:
        trace["verifier"] = usage
    return trace


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", "oomlab.strategies")


def create_strategy(name: str, **options: Any) -> Strategy:
    return STRATEGIES.get(name)(**options)

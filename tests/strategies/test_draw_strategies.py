"""Selection logic of the draw strategies, checked against brute force over every k-subset.

A unit test of selection and its expectation: draws are built by hand from `Generation` objects
and a tiny fake Task defined here, with no backend. `strategy.solve(...)` against a real backend
is tested with the backends.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oomlab.backends.base import Generation, SamplingParams
from oomlab.problem import Problem
from oomlab.strategies import STRATEGIES, Draw, DrawStrategy, create_strategy
from oomlab.tasks.base import Task

PROPERTY = settings(max_examples=80, deadline=None)
PROBLEM = Problem(id="p0", inputs={"q": "?"}, reference="a")
SEEDS = range(8)


class EchoTask(Task):
    """The completion text is the answer; an empty completion has none."""

    name = "echo"

    def problems(self, n: int, seed: int = 0) -> list[Problem]:
        return [PROBLEM][:n]

    def prompt(self, problem: Problem) -> str:
        return "Q: ?\nA:"

    def extract(self, text: str) -> str | None:
        return text.strip() or None

    def sampling(self) -> SamplingParams:
        return SamplingParams(temperature=0.3, max_tokens=8, stop=("\n",))


TASK = EchoTask()


def generation(text: str, seed: int, logprobs: tuple[float, ...] | None = None) -> Generation:
    return Generation(text, 4, 1, 0.0, seed, token_logprobs=logprobs)


@st.composite
def samples(draw, max_n: int = 7):
    """(text, token logprobs) pairs: abstentions (""), right ("a") and wrong answers, tied confidences."""
    n = draw(st.integers(1, max_n))
    texts = st.sampled_from(["", "a", "b", "c"])
    logprobs = st.sampled_from([None, (-1.0,), (-0.5,), (-2.0, 0.0), (-0.25, -0.75)])
    return draw(st.lists(st.tuples(texts, logprobs), min_size=n, max_size=n))


def make_draw(strategy: DrawStrategy, pairs) -> Draw:
    return strategy.make_draw([generation(t, i, lp) for i, (t, lp) in enumerate(pairs)], PROBLEM, TASK)


def sub_draw(draw: Draw, idx) -> Draw:
    pick = lambda xs: tuple(xs[i] for i in idx)  # noqa: E731
    scores = None if draw.scores is None else pick(draw.scores)
    return Draw(pick(draw.generations), pick(draw.answers), pick(draw.correct), scores)


def admissible(strategy: DrawStrategy, draw: Draw) -> list[int]:
    """Brute force: the samples `select` may return on this draw, any of them equally likely."""
    if strategy.name in ("greedy", "sample"):
        return [0]
    if strategy.name == "majority":
        voted = [a for a in draw.answers if a is not None]
        if not voted:
            return []
        top = max(voted.count(a) for a in voted)
        winners = sorted({a for a in voted if voted.count(a) == top})
        return [draw.answers.index(a) for a in winners]  # one representative per tied answer
    top = max(draw.scores)
    return [i for i, s in enumerate(draw.scores) if s == top]


def brute_estimate(strategy: DrawStrategy, draw: Draw, k: int) -> Fraction:
    """Average over every k-subset of the expected correctness of `select` on it (tie-breaks averaged)."""
    total = Fraction(0)
    count = 0
    for idx in itertools.combinations(range(draw.n), k):
        sub = sub_draw(draw, idx)
        options = admissible(strategy, sub)
        for seed in SEEDS:  # the real select only ever returns an admissible sample
            choice = strategy.select(sub, seed)
            assert choice in options if options else choice is None
        if options:
            total += Fraction(sum(sub.correct[o] for o in options), len(options))
        count += 1
    return total / count


ALL = ["greedy", "sample", "majority", "best-of-n", "best-of-n:logprob"]


def build(spec: str) -> DrawStrategy:
    name, _, scorer = spec.partition(":")
    return create_strategy(name, scorer=scorer) if scorer else create_strategy(name)


@pytest.mark.parametrize("spec", ALL)
@PROPERTY
@given(pairs=samples())
def test_estimate_is_the_brute_force_expectation_of_select(spec, pairs):
    strategy = build(spec)
    draw = make_draw(strategy, pairs)
    ks = [1] if strategy.budgets([1, 2, 4]) == [1] else range(1, draw.n + 1)
    for k in ks:
        assert strategy.estimate(draw, k) == pytest.approx(float(brute_estimate(strategy, draw, k)), abs=1e-9)


@pytest.mark.parametrize("spec", ALL)
def test_registered_with_descriptions(spec):
    strategy = build(spec)
    assert spec.split(":")[0] in STRATEGIES.names()
    assert isinstance(strategy, DrawStrategy)
    assert strategy.description and strategy.knob and strategy.knob_help
    assert strategy.config()["name"] == strategy.name


def test_greedy_and_sample_run_at_budget_one():
    greedy, sample = create_strategy("greedy"), create_strategy("sample", temperature=0.6)
    assert greedy.budgets([1, 4, 16]) == sample.budgets([1, 4, 16]) == [1]
    assert greedy.sampling(TASK).temperature == 0.0 and greedy.sampling(TASK).max_tokens == 8
    assert sample.sampling(TASK).temperature == 0.6 and sample.config()["temperature"] == 0.6
    one = make_draw(greedy, [("a", None)])
    assert greedy.select(one) == 0 and greedy.estimate(one, 1) == 1.0
    four = make_draw(sample, [("a", None), ("b", None), ("", None), ("a", None)])
    assert sample.estimate(four, 1) == 0.5  # mean correctness: unbiased for one sample
    for strategy in (greedy, sample):
        with pytest.raises(ValueError):
            strategy.estimate(four, 2)


def test_majority_votes_abstains_and_breaks_ties_by_seed():
    majority = create_strategy("majority")
    draw = make_draw(majority, [("b", None), ("a", None), ("", None), ("a", None), ("", None)])
    assert majority.select(draw) == 1  # "a" twice beats "b" once; empty answers abstain
    assert majority.select(make_draw(majority, [("", None)] * 3)) is None
    tie = make_draw(majority, [("b", None), ("a", None)])
    picks = [majority.select(tie, seed) for seed in range(40)]
    assert set(picks) == {0, 1}  # both tied answers are reachable
    assert picks == [majority.select(tie, seed) for seed in range(40)]  # and the same seed picks the same
    assert majority.estimate(tie, 2) == 0.5


def test_best_of_n_oracle_is_labelled_and_estimates_pass_at_k():
    bon = create_strategy("best-of-n")
    assert bon.oracle and bon.label() == "best-of-n[oracle] (oracle)"
    assert not bon.needs_logprobs()
    assert bon.config() == {"name": "best-of-n", "scorer": "oracle", "temperature": 0.8}
    draw = make_draw(bon, [("b", None), ("a", None), ("", None), ("c", None)])
    assert draw.scores == (0.0, 1.0, 0.0, 0.0)
    assert bon.select(draw) == 1
    assert bon.estimate(draw, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2)


def test_best_of_n_logprob_scores_confidence_and_needs_logprobs():
    bon = create_strategy("best-of-n", scorer="logprob", temperature=0.5)
    assert not bon.oracle and bon.label() == "best-of-n[logprob]"
    assert bon.needs_logprobs() and bon.config()["scorer"] == "logprob"
    draw = make_draw(bon, [("b", (-0.1,)), ("a", (-0.5, -0.3)), ("", (0.0,)), ("c", None)])
    assert draw.scores == (pytest.approx(-0.1), pytest.approx(-0.4), -math.inf, -math.inf)
    assert bon.select(draw) == 0
    with pytest.raises(ValueError):
        bon.select(Draw(draw.generations, draw.answers, draw.correct, None))


def test_unknown_scorer_is_named():
    from oomlab.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="logprob"):
        create_strategy("best-of-n", scorer="nope")

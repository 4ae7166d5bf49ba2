"""The estimators against brute force: every k-subset of a small draw enumerated with itertools."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oomlab.estimators import best_of_k, majority_at_k, pass_at_k

PROPERTY = settings(max_examples=150, deadline=None)
ANSWERS = [None, "a", "b", "c", "d"]


def subsets(n: int, k: int):
    return itertools.combinations(range(n), k)


def brute_pass(n: int, c: int, k: int) -> Fraction:
    correct = [i < c for i in range(n)]
    hits = [any(correct[i] for i in sub) for sub in subsets(n, k)]
    return Fraction(sum(hits), len(hits))


def vote_value(answers, correct, sub) -> Fraction:
    """Expected correctness of the plurality vote on one subset, ties averaged."""
    votes: dict[str, int] = {}
    for i in sub:
        if answers[i] is not None:
            votes[answers[i]] = votes.get(answers[i], 0) + 1
    if not votes:
        return Fraction(0)
    good = {a for a, c in zip(answers, correct) if c and a is not None}
    top = max(votes.values())
    tied = [a for a, v in votes.items() if v == top]
    return Fraction(sum(a in good for a in tied), len(tied))


def brute_majority(answers, correct, k) -> Fraction:
    values = [vote_value(answers, correct, sub) for sub in subsets(len(answers), k)]
    return sum(values, Fraction(0)) / len(values)


def pick_value(scores, correct, sub) -> Fraction:
    top = max(scores[i] for i in sub)
    tied = [i for i in sub if scores[i] == top]
    return Fraction(sum(correct[i] for i in tied), len(tied))


def brute_best(scores, correct, k) -> Fraction:
    values = [pick_value(scores, correct, sub) for sub in subsets(len(scores), k)]
    return sum(values, Fraction(0)) / len(values)


@st.composite
def votes(draw, max_n: int = 8):
    """Answers with abstentions, ties, several wrong answers, and sometimes several correct ones."""
    answers = draw(st.lists(st.sampled_from(ANSWERS), min_size=1, max_size=max_n))
    good = draw(st.sets(st.sampled_from(ANSWERS[1:]), max_size=2))
    correct = [a in good for a in answers]
    k = draw(st.integers(1, len(answers)))
    return answers, correct, k


@st.composite
def scored(draw, max_n: int = 8):
    n = draw(st.integers(1, max_n))
    scores = draw(st.lists(st.sampled_from([-math.inf, -1.0, 0.0, 0.5, 2.0]), min_size=n, max_size=n))
    correct = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    k = draw(st.integers(1, n))
    return scores, correct, k


# --- pass@k ---


@PROPERTY
@given(st.integers(1, 10).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_matches_brute_force(nck):
    n, c, k = nck
    assert pass_at_k(n, c, k) == pytest.approx(float(brute_pass(n, c, k)), abs=1e-9)


def test_pass_at_k_closed_form_and_bounds():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 6, 5) == 1.0  # fewer than k wrong samples: every subset holds a correct one
    assert pass_at_k(200, 20, 50) == pytest.approx(1 - math.comb(180, 50) / math.comb(200, 50), rel=1e-12)
    for bad in [(3, 1, 4), (3, 1, 0), (3, 4, 1), (0, 0, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(*bad)


# --- majority@k ---


@PROPERTY
@given(votes())
def test_majority_at_k_matches_brute_force(case):
    answers, correct, k = case
    expected = float(brute_majority(answers, correct, k))
    assert majority_at_k(answers, correct, k) == pytest.approx(expected, abs=1e-9)
    assert majority_at_k(answers, correct, k, exact=True) == pytest.approx(expected, abs=1e-12)


@PROPERTY
@given(votes())
def test_majority_at_k_boundaries(case):
    answers, correct, _ = case
    n = len(answers)
    voted_right = [c and a is not None for a, c in zip(answers, correct)]
    assert majority_at_k(answers, correct, 1) == pytest.approx(sum(voted_right) / n, abs=1e-12)
    full = float(vote_value(answers, correct, range(n)))  # k = n: the whole draw votes
    assert majority_at_k(answers, correct, n) == pytest.approx(full, abs=1e-12)


def test_majority_at_k_ties_abstentions_and_errors():
    assert majority_at_k(["a", "b"], [True, False], 2) == pytest.approx(0.5)  # a tie is a coin flip
    assert majority_at_k([None, None], [False, False], 1) == 0.0  # everyone abstains: incorrect
    assert majority_at_k(["a", None, None], [True, False, False], 3) == 1.0  # abstentions do not vote
    with pytest.raises(ValueError):
        majority_at_k(["a", "a"], [True, False], 1)  # one answer, two verdicts
    with pytest.raises(ValueError):
        majority_at_k(["a"], [True], 2)
    with pytest.raises(ValueError):
        majority_at_k(["a"], [True, False], 1)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(1, 30), min_size=1, max_size=6),
    st.integers(0, 10),
    st.data(),
)
def test_majority_float_path_matches_exact_integers(counts, abstain, data):
    """Larger draws than brute force reaches: the probability-scaled DP against exact integer counting."""
    answers = [str(i) for i, m in enumerate(counts) for _ in range(m)] + [None] * abstain
    correct = [a == "0" for a in answers]
    k = data.draw(st.integers(1, len(answers)))
    assert majority_at_k(answers, correct, k) == pytest.approx(
        majority_at_k(answers, correct, k, exact=True), abs=1e-12
    )


@pytest.mark.parametrize("counts,abstain,k", [([300, 250, 200, 150, 40], 60, 500), ([1] * 700 + [150, 100], 50, 333)])
def test_majority_win_probabilities_sum_to_one_at_large_n(counts, abstain, k):
    """Sum over answers of P(that answer wins) = 1 - P(all k abstain): a check at n = 1000."""
    answers = [f"x{i}" for i, m in enumerate(counts) for _ in range(m)] + [None] * abstain
    n = len(answers)
    distinct = sorted({a for a in answers if a is not None}, key=lambda a: -answers.count(a))
    total = sum(majority_at_k(answers, [a == x for a in answers], k) for x in distinct[:5])
    # the singletons are exchangeable: each wins with the same probability
    if len(distinct) > 5:
        total += (len(distinct) - 5) * majority_at_k(answers, [a == distinct[-1] for a in answers], k)
    all_abstain = math.comb(abstain, k) / math.comb(n, k)
    assert total == pytest.approx(1 - all_abstain, abs=1e-9)


# --- best-of-k ---


@PROPERTY
@given(scored())
def test_best_of_k_matches_brute_force(case):
    scores, correct, k = case
    assert best_of_k(scores, correct, k) == pytest.approx(float(brute_best(scores, correct, k)), abs=1e-9)


@PROPERTY
@given(scored())
def test_best_of_k_boundaries(case):
    scores, correct, _ = case
    n = len(scores)
    assert best_of_k(scores, correct, 1) == pytest.approx(sum(correct) / n, abs=1e-12)
    assert best_of_k(scores, correct, n) == pytest.approx(float(pick_value(scores, correct, range(n))), abs=1e-12)


@PROPERTY
@given(st.lists(st.booleans(), min_size=1, max_size=10), st.data())
def test_best_of_k_with_oracle_scores_is_pass_at_k(correct, data):
    k = data.draw(st.integers(1, len(correct)))
    scores = [float(c) for c in correct]
    assert best_of_k(scores, correct, k) == pytest.approx(pass_at_k(len(correct), sum(correct), k), abs=1e-12)


def test_best_of_k_errors():
    with pytest.raises(ValueError):
        best_of_k([0.0, math.nan], [True, False], 1)
    with pytest.raises(ValueError):
        best_of_k([0.0], [True], 2)
    with pytest.raises(ValueError):
        best_of_k([0.0, 1.0], [True], 1)

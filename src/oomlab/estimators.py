"""Exact estimators of a strategy's accuracy at budget k from ONE draw of n >= k samples.

Each estimator is the expectation, over a uniformly random k-subset of the n samples, of whether
the strategy's selection on that subset is correct. Drawing n once and estimating every k <= n
this way is unbiased and has lower variance than drawing each rung separately (Chen et al. 2021,
arXiv 2107.03374, §2.1).
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.stats import binom, hypergeom

__all__ = ["best_of_k", "majority_at_k", "pass_at_k"]


def _check_k(n: int, k: int) -> None:
    if n < 1:
        raise ValueError(f"need at least one sample, got n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"k must lie in 1..n={n}, got k={k}")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k).

    Chen et al. 2021 (arXiv 2107.03374), eq. 1, in its numerically stable product form
    1 - prod_{i=n-c+1}^{n} (1 - k/i) (their Figure 3).
    """
    _check_k(n, k)
    if not 0 <= c <= n:
        raise ValueError(f"c must lie in 0..n={n}, got c={c}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def best_of_k(scores: Sequence[float], correct: Sequence[bool], k: int) -> float:
    """Expected correctness of the highest-scoring member of a uniformly random k-subset.

    Ties are broken uniformly at random. With the samples sorted by score ascending, position j
    (0-based) is the subset's maximum with probability C(j, k-1) / C(n, k) (the other k-1 members
    come from the j below it); breaking ties at random is the same as ordering each group of equal
    scores at random, so each position counts with its tie group's mean correctness. This is the
    best-of-n estimator used for verifier-based selection (e.g. Brown et al. 2024, "Large Language
    Monkeys", arXiv 2407.21787, §4).
    """
    n = len(scores)
    if len(correct) != n:
        raise ValueError(f"{n} scores but {len(correct)} correctness flags")
    _check_k(n, k)
    s = np.asarray(scores, dtype=float)
    if np.isnan(s).any():
        raise ValueError("scores contain NaN; give missing scores as -inf")
    order = np.argsort(s, kind="stable")
    s, c = s[order], np.asarray(correct, dtype=float)[order]
    # w[j] = C(j, k-1) / C(n, k): w[n-1] = k/n, w[j-1] = w[j] (j-k+1)/j; zero below j = k-1.
    js = np.arange(n - 1, k - 1, -1)  # n-1, ..., k
    w = np.zeros(n)
    w[k - 1 :] = ((k / n) * np.cumprod(np.r_[1.0, (js - k + 1) / js]))[::-1]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    group_w = np.add.reduceat(w, starts)
    group_mean = np.add.reduceat(c, starts) / np.diff(np.r_[starts, n])
    return float(np.clip(group_w @ group_mean, 0.0, 1.0))


# --- majority@k ------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _coefficients(m: int, n: int, k: int, exact: bool) -> np.ndarray:
    """Weights of drawing x = 0..m members of a group of size m.

    Exact: C(m, x) as Python ints. Float: C(m, x) p^x (1-p)^(m-x) with p = k/n, the Binomial(m, p)
    pmf: over a whole k-subset the factors p^k (1-p)^(n-k) are common to every term and cancel
    against the normaliser (the Binomial(n, p) pmf at k), and the pmf stays in floating-point
    range where C(1000, 500) ~ 1e299 would not. Every term is non-negative, so no cancellation.
    """
    if exact:
        out = np.array([math.comb(m, x) for x in range(m + 1)], dtype=object)
    else:
        out = binom.pmf(np.arange(m + 1), m, k / n)
    out.setflags(write=False)  # cached and shared
    return out


def _times(arr: np.ndarray, kernel: np.ndarray, out_rows: int) -> np.ndarray:
    """Each row of `arr` times the polynomial `kernel`, truncated to arr's width, in `out_rows` rows."""
    rows, width = arr.shape
    out = np.zeros((out_rows, width), dtype=arr.dtype)
    if len(kernel) <= 4:  # short kernel: shift-and-add over the whole array
        for x, kx in enumerate(kernel[:width]):
            if kx:
                out[:rows, x:] += kx * arr[:, : width - x]
    else:
        for s in range(rows):
            out[s] = np.convolve(arr[s], kernel)[:width]
    return out


def _weighted_ties(t: int, rest: int, rivals: list[tuple[np.ndarray, int]], pool: np.ndarray, exact: bool):
    """Weighted number of ways to spend `rest` picks with every rival below t picks or tied at t.

    Each way is weighted by the product of its coefficients and by 1/(1 + #rivals tied at t).
    `rivals` are (coefficients, multiplicity) of the answers that could reach t picks, grouped by
    sample count, largest group first; `pool` holds everything that cannot reach t (abstentions,
    smaller answers). The DP multiplies out pool(z) * prod_b (B_b(z) + y T_b z^t), with B_b the
    coefficients below t and T_b the one at t: arr[s, j] is the coefficient of y^s z^j, the
    weighted count with s rivals tied and j picks.
    """
    width = rest + 1
    dtype = object if exact else float
    arr = np.zeros((1, width), dtype=dtype)
    arr[0, : min(width, len(pool))] = pool[:width]
    max_tied = rest // t  # s tied rivals take s*t picks
    for g, (q, r) in enumerate(rivals):
        below, tie = q[:t], q[t]
        if g == 0:
            # While arr is one row, expand the largest group at once:
            # pool (B + y T z^t)^r = sum_s C(r, s) T^s y^s z^(ts) pool B^(r-s).
            # In floats, C(r, s) T^s B^(r-s) = Binomial(r, T) pmf at s * (B / (1-T))^(r-s), all <= 1
            # (C(r, s) alone overflows a float past r ~ 1030).
            if not exact and tie < 1.0:
                below = below / (1.0 - tie)
            powers = [arr]
            for _ in range(r):
                powers.append(_times(powers[-1], below, 1))
            ss = range(min(r, max_tied) + 1)
            weights = [math.comb(r, s) * tie**s for s in ss] if exact else binom.pmf(ss, r, tie)
            arr = np.zeros((len(ss), width), dtype=dtype)
            for s in ss:
                arr[s, t * s :] = weights[s] * powers[r - s][0, : width - t * s]
            continue
        for _ in range(r):
            rows = arr.shape[0]
            new = _times(arr, below, min(rows + 1, max_tied + 1))
            if new.shape[0] > 1:
                new[1:, t:] += tie * arr[: new.shape[0] - 1, : width - t]
            arr = new
    if exact:
        return sum((Fraction(int(arr[s, rest]), s + 1) for s in range(arr.shape[0])), Fraction(0))
    return float(arr[:, rest] @ (1.0 / np.arange(1, arr.shape[0] + 1)))


def majority_at_k(answers: Sequence[str | None], correct: Sequence[bool], k: int, *, exact: bool = False) -> float:
    """Expected correctness of the plurality vote over a uniformly random k-subset of the samples.

    maj@k of self-consistency (Wang et al. 2022, arXiv 2203.11171, §2), estimated from one draw of
    n >= k samples without enumerating subsets. A None answer abstains; a tie between the top
    answers is broken uniformly at random (it contributes #correct tied / #tied); a subset where
    everyone abstains is incorrect.

    The vote is correct when some correct answer a wins. With m_b samples of answer b and
    m_0 abstentions, P(a wins) = sum_t C(m_a, t) W_a(t) / C(n, k), where W_a(t) counts the ways
    to spend the other k - t picks with every other answer below t or tied at t, each way weighted
    by 1/(1 + #tied) (the chance that a wins the tie-break). W_a(t) is a coefficient of a product
    of truncated polynomials in the number of picks, computed by a DP that also tracks the number
    tied; answers with fewer than t samples cannot tie and are pooled with the abstentions.

    exact=True counts in Python integers (a Fraction, returned as float). The default counts in
    Binomial(m, k/n) probabilities (see `_coefficients`), every term non-negative, so rounding
    error stays near machine precision for n in the thousands; it also skips a threshold t when
    P(a gets t picks and its largest rival at most t) < 1e-15/n, so at most 1e-15 is dropped.
    """
    n = len(answers)
    if len(correct) != n:
        raise ValueError(f"{n} answers but {len(correct)} correctness flags")
    _check_k(n, k)
    counts: dict[str, int] = {}
    is_correct: dict[str, bool] = {}
    for a, c in zip(answers, correct):
        if a is None:
            continue
        counts[a] = counts.get(a, 0) + 1
        if is_correct.setdefault(a, bool(c)) != bool(c):
            raise ValueError(f"answer {a!r} is marked both correct and incorrect")
    abstain = n - sum(counts.values())
    total = Fraction(0) if exact else 0.0
    for a, m_a in counts.items():
        if not is_correct[a]:
            continue
        others = [m for b, m in counts.items() if b != a]
        coef_a = _coefficients(m_a, n, k, exact)
        ts = np.arange(1, min(m_a, k) + 1)
        keep = np.ones(len(ts), bool) if exact else _worth_counting(n, k, m_a, ts, max(others, default=0), 1e-15 / n)
        for t in ts[keep].tolist():
            rest = k - t
            rivals = Counter(m for m in others if m >= t)
            pooled = abstain + sum(m for m in others if m < t)
            if pooled + t * sum(rivals.values()) < rest:  # the others cannot take k - t picks without beating a
                continue
            w = _weighted_ties(
                t,
                rest,
                [(_coefficients(m, n, k, exact), r) for m, r in sorted(rivals.items(), key=lambda mr: -mr[1])],
                _coefficients(pooled, n, k, exact),
                exact,
            )
            total += (Fraction(int(coef_a[t])) if exact else float(coef_a[t])) * w
    if exact:
        return float(total / math.comb(n, k))
    return float(min(1.0, max(0.0, total / binom.pmf(k, n, k / n))))


def _worth_counting(n: int, k: int, m_a: int, ts: np.ndarray, m_b: int, tol: float) -> np.ndarray:
    """Mask of the thresholds t at which answer a (m_a samples) can win with probability >= tol.

    P(a wins with t picks) <= P(a gets t picks) P(its largest rival, m_b samples, gets <= t of the
    other k - t picks): two hypergeometric terms. Skipping the rest drops < tol per threshold.
    """
    bound = hypergeom.pmf(ts, n, m_a, k)
    if m_b:
        bound = bound * hypergeom.cdf(ts, n - m_a, m_b, k - ts)
    return bound >= tol


EXACT_SUBSETS = 20_000  # weighted_vote_at_k enumerates every k-subset up to this many; beyond, samples this many


def weighted_winners(indices: Sequence[int], answers: Sequence[str | None], confidences: Sequence[float],
                     keep: float) -> list[str]:
    """The answers tied for the highest confidence-weighted vote among the traces `indices` (filtered first)."""
    voters = [i for i in indices if answers[i] is not None]
    if not voters:
        return []
    voters.sort(key=lambda i: (-confidences[i], i))  # most confident first; the older sample on ties
    kept = voters[: max(1, math.ceil(keep * len(voters)))]
    weights = {i: math.exp(confidences[i]) if confidences[i] > -math.inf else 0.0 for i in kept}
    if not any(weights.values()):
        weights = dict.fromkeys(kept, 1.0)  # no confidence anywhere: a plain count
    votes: dict[str, float] = {}
    for i in sorted(kept):  # answers in order of first appearance
        votes[answers[i]] = votes.get(answers[i], 0.0) + weights[i]  # type: ignore[index]
    top = max(votes.values())
    return [a for a, v in votes.items() if math.isclose(v, top, rel_tol=1e-12, abs_tol=0.0)]


def weighted_vote_at_k(answers: Sequence[str | None], correct: Sequence[bool], confidences: Sequence[float],
                       keep: float, k: int) -> float:
    """Expected correctness of the confidence-weighted vote (DeepConf) on a uniformly random k-subset.

    Exact over every subset when there are at most EXACT_SUBSETS of them, else the mean over that
    many subsets drawn uniformly with a fixed seed (standard error below 0.004).
    """
    n = len(answers)
    _check_k(n, k)
    right = {a for a, c in zip(answers, correct) if a is not None and c}
    if math.comb(n, k) <= EXACT_SUBSETS:
        subsets: Any = itertools.combinations(range(n), k)
        count = math.comb(n, k)
    else:
        rng = random.Random(f"deepconf|{n}|{k}")
        subsets = (rng.sample(range(n), k) for _ in range(EXACT_SUBSETS))
        count = EXACT_SUBSETS
    total = 0.0
    for subset in subsets:
        winners = weighted_winners(subset, answers, confidences, keep)
        if winners:
            total += sum(a in right for a in winners) / len(winners)
    return total / count


def mean_correct(correct: Sequence[bool], k: int) -> float:
    """One sample's accuracy (sample, greedy): the draw's mean correctness, unbiased, variance 1/N."""
    if k != 1:
        raise ValueError(f"a one-sample strategy runs at budget 1 only, got k={k}")
    if not correct:
        raise ValueError("empty draw")
    return sum(correct) / len(correct)


EstimatorFn = Callable[..., float]  # (answers, correct, scores, k, **params) -> expected correctness at k
_ESTIMATORS: dict[str, EstimatorFn] = {}


def register_estimator(name: str) -> Callable[[EstimatorFn], EstimatorFn]:
    """Register how rung k of a draw strategy is estimated from its draw, under `name`.

    A new draw strategy with an estimator of its own registers it in its own file, beside the class;
    the built-ins are below. The estimator's record (`{"name": ..., **params}`) is what the sweep
    writes into the run, so analysis calls it without the strategy object.
    """
    def decorate(fn: EstimatorFn) -> EstimatorFn:
        _ESTIMATORS[name] = fn
        return fn
    return decorate


def estimator_names() -> list[str]:
    return sorted(_ESTIMATORS)


def estimate(estimator: dict[str, Any], answers: Sequence[str | None], correct: Sequence[bool],
             scores: Sequence[float] | None, k: int) -> float:
    """Rung k of a draw strategy from its stored draw, by the estimator its record names."""
    params = {key: v for key, v in estimator.items() if key != "name"}
    fn = _ESTIMATORS.get(estimator["name"])
    if fn is None:
        raise ValueError(f"unknown estimator '{estimator['name']}'; registered estimators: "
                         f"{', '.join(estimator_names())} (a strategy's own estimator is registered when its module "
                         "is imported)")
    return fn(answers, correct, scores, k, **params)


def _needs_scores(name: str, scores: Sequence[float] | None) -> Sequence[float]:
    if scores is None:
        raise ValueError(f"estimator '{name}' needs the draw's scores")
    return scores


register_estimator("mean")(lambda answers, correct, scores, k: mean_correct(correct, k))
register_estimator("majority")(lambda answers, correct, scores, k: majority_at_k(answers, correct, k))
register_estimator("pass")(lambda answers, correct, scores, k: pass_at_k(len(correct), sum(correct), k))
register_estimator("best-of-k")(
    lambda answers, correct, scores, k: best_of_k(_needs_scores("best-of-k", scores), correct, k))
register_estimator("weighted-vote")(
    lambda answers, correct, scores, k, keep=1.0: weighted_vote_at_k(
        answers, correct, _needs_scores("weighted-vote", scores), float(keep), k))

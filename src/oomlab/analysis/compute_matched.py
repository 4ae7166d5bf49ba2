"""Compute-matched comparison: a small model plus test-time compute vs a larger model's greedy pass@1.

The accounting is Snell et al. 2024 ("Scaling LLM Test-Time Compute Optimally can be More
Effective than Scaling Model Parameters", arXiv 2408.03314, §7):

* pretraining FLOPs  X = 6 · N · D_pretrain
* inference FLOPs    Y = 2 · N · D_inference   (2N FLOPs per generated token)
* R = D_inference / D_pretrain: how much the model will be used relative to how long it was
  trained. Small R (few queries) favours test-time compute on the small model; large R
  (heavy deployment) favours pretraining the bigger model.

The larger model (N_b, D_b) answers each query greedily with T_b tokens. Over Q queries it
costs 6 N_b D_b + 2 N_b T_b Q. The small model (N_s, D_s) matches that total when it spends

    t* = (6 N_b D_b + 2 N_b T_b Q - 6 N_s D_s) / (2 N_s Q)

tokens per query. With D_s = D_b and T_b the small model's base tokens, t*/T_b is Snell's
multiplier M + 3 (D_pretrain / D_inference)(M - 1) for M = N_b / N_s (§7).

Here D_inference = Q · T_b (the deployment's load counted in the large model's greedy
tokens), so a ratio R gives Q = R · D_b / T_b. Training tokens come from the model cards.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from oomlab.analysis.intervals import (
    EXACT,
    WILSON,
    MeanInterval,
    is_binary,
    mean_interval,
    mover_difference,
    wilson_interval,
)
from oomlab.errors import ConfigError

__all__ = [
    "ComputeMatched",
    "ModelSpec",
    "NO_CLEAR_WINNER",
    "compare_across_ratios",
    "compare_at_matched_flops",
    "decide_winner",
    "difference_interval",
    "matched_test_time_multiplier",
]

NO_CLEAR_WINNER = "no clear winner"


@dataclass(frozen=True)
class ModelSpec:
    """A model as the FLOPs accounting sees it: parameters N and training tokens D (model card)."""

    name: str
    params: float
    train_tokens: float

    def __post_init__(self) -> None:
        if not (self.params > 0 and self.train_tokens > 0):
            raise ConfigError(f"model '{self.name}': params and train_tokens must be positive")

    @property
    def train_flops(self) -> float:
        """6 · N · D (Kaplan et al. 2020, §2.1; Snell et al. 2024, §7)."""
        return 6.0 * self.params * self.train_tokens

    def inference_flops(self, tokens: float) -> float:
        """2 · N per generated token."""
        return 2.0 * self.params * tokens


def matched_test_time_multiplier(size_ratio: float, ratio: float) -> float:
    """Snell et al. 2024 §7: inference-token multiplier M + 3(M - 1)/R for a model M× smaller.

    Both models trained on the same tokens; R = D_inference / D_pretrain.
    """
    if size_ratio < 1 or ratio <= 0:
        raise ConfigError("size_ratio must be >= 1 and ratio R must be positive")
    return size_ratio + 3.0 * (size_ratio - 1.0) / ratio


@dataclass(frozen=True)
class ComputeMatched:
    """One comparison at equal total FLOPs (training + inference over the deployment)."""

    small: str
    large: str
    ratio: float  # R = D_inference / D_pretrain of the large model
    queries: float
    total_flops: float  # both sides spend this
    small_train_flops: float
    large_train_flops: float
    large_tokens_per_query: float
    large_accuracy: float  # greedy pass@1
    small_tokens_affordable: float  # t* per query
    small_tokens_used: float  # what the measured ladder lets it spend (<= t*)
    test_time_multiplier: float  # t* / the small model's cheapest rung
    small_accuracy: float  # NaN when it cannot afford its cheapest rung
    difference: float  # small - large
    difference_interval: tuple[float, float] | None
    level: float
    winner: str  # "small", "large", "tie" (interval inside ±tolerance) or "no clear winner"
    status: str  # "interpolated", "capped at largest rung", "cannot afford cheapest rung"
    note: str
    interval_method: str = ""
    paired: bool = False
    tolerance: float = 0.0  # a winner needs the whole interval beyond ±tolerance

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        d = asdict(self)
        d["difference_interval"] = None if self.difference_interval is None else list(self.difference_interval)
        return d


def _mix_weights(tokens: np.ndarray, budget: float) -> tuple[np.ndarray, str]:
    """Weights over rungs that spend exactly ``budget`` tokens on average.

    Between two measured rungs, a deployment can run the cheaper one on some queries and
    the dearer one on the rest: accuracy and tokens both mix linearly, so this is an
    achievable point, not an extrapolation. Past the last rung the small model is held at
    its last rung (a lower bound for it).
    """
    w = np.zeros(tokens.size)
    if budget < tokens[0] * (1 - 1e-9):  # rounding in 6ND/2N arithmetic must not price out an equal budget
        return w, "cannot afford cheapest rung"
    budget = max(budget, float(tokens[0]))
    if budget >= tokens[-1]:
        w[-1] = 1.0
        return w, "capped at largest rung"
    j = int(np.searchsorted(tokens, budget, side="right")) - 1
    frac = (budget - tokens[j]) / (tokens[j + 1] - tokens[j])
    w[j], w[j + 1] = 1.0 - frac, frac
    return w, "interpolated"


def _bootstrap_mean_diff(diff_rows: np.ndarray, n_boot: int, level: float, seed: int) -> tuple[float, float]:
    """Percentile bootstrap of the mean of per-problem differences (paired: same problems resampled)."""
    rng = np.random.default_rng(seed)
    n = diff_rows.size
    means = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot) @ diff_rows / n
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


class _NoInterval(Exception):
    """n_boot=0 where only a bootstrap could give an interval."""


def _side(rows: np.ndarray | None, mean: float, n: int | None, n_boot: int, level: float, seed: int) -> MeanInterval:
    """One side of an unpaired difference and its own interval (zero width for a number taken as exact)."""
    if rows is not None:
        if n_boot == 0 and not is_binary(rows):
            raise _NoInterval
        return mean_interval(rows, level, n_boot, seed)
    if n is not None:
        lo, hi = wilson_interval(round(mean * n), n, level)
        return MeanInterval(mean, lo, hi, f"{WILSON} on {n} problems")
    return MeanInterval(mean, mean, mean, EXACT)


def difference_interval(
    small_rows: np.ndarray | None,
    small_mean: float,
    large_rows: np.ndarray | None,
    large_mean: float,
    *,
    paired: bool,
    large_n: int | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[tuple[float, float] | None, str]:
    """Interval for small - large and the name of its method.

    Paired (the same problems on both sides): percentile bootstrap of the per-problem differences,
    so the problems' shared difficulty cancels. Unpaired (different problems, or a side known only
    as a number): each side gets its own interval (Wilson for 0/1 outcomes, percentile bootstrap
    otherwise; a bare number is taken as exact unless ``large_n`` says how many problems it came
    from) and MOVER combines them; two 0/1 sides make it Newcombe's hybrid score interval.
    None when both sides are exact numbers (the difference then has no sampling error to show).
    """
    if paired:
        if small_rows is None or large_rows is None or small_rows.size != large_rows.size:
            raise ConfigError("a paired comparison needs per-problem results of both models on the same problems")
        if n_boot == 0:
            return None, "none (n_boot=0)"
        return _bootstrap_mean_diff(small_rows - large_rows, n_boot, level, seed), "paired bootstrap over the same problems"
    try:
        a = _side(small_rows, small_mean, None, n_boot, level, seed)
        b = _side(large_rows, large_mean, large_n, n_boot, level, seed + 1)
    except _NoInterval:
        return None, "none (n_boot=0)"
    if a.method == EXACT and b.method == EXACT:
        return None, "none: both accuracies given as exact numbers"
    method = f"unpaired (different problems): MOVER of small's {a.method} and large's {b.method}"
    return mover_difference(a, b), method


def decide_winner(difference: float, interval: tuple[float, float] | None, tolerance: float, exact: bool) -> str:
    """'small' or 'large' only when the interval lies wholly beyond +tolerance or -tolerance; 'tie' when it
    lies wholly inside [-tolerance, tolerance]; otherwise 'no clear winner'. Exact numbers (no interval
    because nothing was sampled) are compared directly."""
    if interval is None:
        if not exact or math.isnan(difference):
            return NO_CLEAR_WINNER
        return "small" if difference > tolerance else "large" if difference < -tolerance else "tie"
    lo, hi = interval
    if lo > tolerance:
        return "small"
    if hi < -tolerance:
        return "large"
    if lo >= -tolerance and hi <= tolerance:
        return "tie"
    return NO_CLEAR_WINNER


def compare_at_matched_flops(
    small: ModelSpec,
    small_tokens: Sequence[float],
    small_accuracy: Any,
    large: ModelSpec,
    large_accuracy: Any,
    large_tokens: float,
    *,
    ratio: float | None = None,
    queries: float | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    tie_tolerance: float = 0.0,
    paired: bool | None = None,
    large_n: int | None = None,
) -> ComputeMatched:
    """Small model + test-time compute vs the large model's greedy pass@1 at equal total FLOPs.

    ``small_tokens``: inference tokens per problem at each rung of the small model's ladder
    (increasing); ``small_accuracy``: its mean accuracy per rung, or a (problems, rungs)
    matrix. ``large_accuracy``: the large model's greedy pass@1, or a per-problem 0/1
    vector; ``large_n``: for a bare number, how many problems it was measured on (it then
    gets a Wilson interval; without it the number is taken as exact). Give exactly one of
    ``ratio`` (R = D_inference / D_pretrain) or ``queries``.

    ``paired``: whether the two sides' rows are the SAME problems in the same order (paired
    bootstrap of per-problem differences); False gives the unpaired two-sample interval
    (see :func:`difference_interval`). None pairs when both sides have equally many rows.
    A winner is named only when the interval lies wholly beyond ±``tie_tolerance``
    (see :func:`decide_winner`).
    """
    if (ratio is None) == (queries is None):
        raise ConfigError("give exactly one of ratio (R = D_inference / D_pretrain) or queries")
    if large_tokens <= 0:
        raise ConfigError("large_tokens (greedy tokens per query) must be positive")
    if not 0 < level < 1:
        raise ConfigError(f"level must lie strictly between 0 and 1, got {level}")
    if tie_tolerance < 0:
        raise ConfigError(f"tie_tolerance must be >= 0, got {tie_tolerance}")
    if large_n is not None and large_n < 1:
        raise ConfigError(f"large_n must be a positive number of problems, got {large_n}")
    if queries is None:
        if ratio <= 0:
            raise ConfigError(f"ratio R must be positive, got {ratio}")
        queries = ratio * large.train_tokens / large_tokens
    elif queries <= 0:
        raise ConfigError(f"queries must be positive, got {queries}")
    else:
        ratio = queries * large_tokens / large.train_tokens

    tokens = np.asarray(small_tokens, dtype=float)
    acc = np.asarray(small_accuracy, dtype=float)
    if tokens.ndim != 1 or np.any(tokens <= 0) or np.any(np.diff(tokens) <= 0):
        raise ConfigError("small_tokens must be positive and strictly increasing across rungs")
    if acc.shape[-1] != tokens.size or acc.ndim not in (1, 2):
        raise ConfigError(f"small_accuracy must be (rungs,) or (problems, rungs) with {tokens.size} rungs")
    large_acc = np.asarray(large_accuracy, dtype=float)
    if large_acc.ndim > 1:
        raise ConfigError("large_accuracy must be a number or a per-problem vector")
    for arr, what in ((acc, "small_accuracy"), (large_acc, "large_accuracy")):
        if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
            raise ConfigError(f"{what} must lie in [0, 1]")

    total = large.train_flops + large.inference_flops(large_tokens * queries)
    affordable = (total - small.train_flops) / (2.0 * small.params * queries)
    weights, status = _mix_weights(tokens, affordable)
    small_rows = acc @ weights if acc.ndim == 2 else None
    small_mean = float(np.mean(acc, axis=0) @ weights) if acc.ndim == 2 else float(acc @ weights)
    large_mean = float(np.mean(large_acc))
    large_rows = large_acc if large_acc.ndim == 1 else None
    if paired is None:
        paired = small_rows is not None and large_rows is not None and small_rows.size == large_rows.size

    method = ""
    if status == "cannot afford cheapest rung":
        small_mean, diff, interval, winner = math.nan, math.nan, None, "large"
        note = (f"at R = {ratio:.3g} the small model's share of the FLOPs buys {affordable:.3g} "
                f"tokens per query, below its cheapest rung ({tokens[0]:.3g})")
    else:
        diff = small_mean - large_mean
        interval, method = difference_interval(small_rows, small_mean, large_rows, large_mean, paired=paired,
                                               large_n=large_n, n_boot=n_boot, level=level, seed=seed)
        exact = small_rows is None and large_rows is None and large_n is None
        winner = decide_winner(diff, interval, tie_tolerance, exact)
        note = f"{small.name} spends {affordable:.3g} tokens per query ({status})"
        if status == "capped at largest rung":
            note += f"; its ladder stops at {tokens[-1]:.3g}, so its accuracy is a lower bound"

    return ComputeMatched(
        small=small.name,
        large=large.name,
        ratio=float(ratio),
        queries=float(queries),
        total_flops=float(total),
        small_train_flops=small.train_flops,
        large_train_flops=large.train_flops,
        large_tokens_per_query=float(large_tokens),
        large_accuracy=large_mean,
        small_tokens_affordable=float(affordable),
        small_tokens_used=float(min(max(affordable, 0.0), tokens[-1])) if status != "cannot afford cheapest rung" else 0.0,
        test_time_multiplier=float(affordable / tokens[0]),
        small_accuracy=small_mean,
        difference=diff,
        difference_interval=interval,
        level=level,
        winner=winner,
        status=status,
        note=note,
        interval_method=method,
        paired=bool(paired),
        tolerance=float(tie_tolerance),
    )


def compare_across_ratios(
    small: ModelSpec,
    small_tokens: Sequence[float],
    small_accuracy: Any,
    large: ModelSpec,
    large_accuracy: Any,
    large_tokens: float,
    ratios: Sequence[float] = (0.1, 1.0, 10.0),
    **kwargs: Any,
) -> list[ComputeMatched]:
    """The comparison at several R (Snell et al. 2024 §7 contrasts R << 1, R ~ 1, R >> 1)."""
    return [
        compare_at_matched_flops(
            small, small_tokens, small_accuracy, large, large_accuracy, large_tokens, ratio=r, **kwargs
        )
        for r in ratios
    ]

"""Compute-matched comparison of two stored runs: a small model with test-time compute vs a larger model's pass@1.

`compare_runs` is what `oomlab compare` prints: it reads both runs' curves, orders the models by
parameter count, and for every chosen strategy of the small model and every R (inference tokens /
pretraining tokens) asks :func:`oomlab.analysis.compute_matched.compare_at_matched_flops` who wins at
equal total FLOPs (Snell et al. 2024, arXiv 2408.03314, §7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from oomlab.analysis.compute_matched import ComputeMatched, ModelSpec, compare_at_matched_flops
from oomlab.analysis.curves import run_curves
from oomlab.errors import ConfigError
from oomlab.store import Store

__all__ = ["DEFAULT_RATIOS", "ComparedModel", "MatchedRow", "RunComparison", "compare_runs"]

DEFAULT_RATIOS = (0.1, 1.0, 10.0)


@dataclass(frozen=True)
class ComparedModel:
    """One side of the comparison: its run and the model facts the FLOPs accounting uses."""

    run_id: str
    spec: ModelSpec

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "name": self.spec.name, "params": self.spec.params,
                "train_tokens": self.spec.train_tokens, "train_flops": self.spec.train_flops}


@dataclass(frozen=True)
class MatchedRow:
    """One (small-model strategy, R) cell: the comparison, or why it was refused."""

    strategy: str
    label: str
    oracle: bool
    ratio: float
    result: ComputeMatched | None = None
    refused: str | None = None

    def to_dict(self) -> dict[str, Any]:
        entry = {"strategy": self.strategy, "label": self.label, "oracle": self.oracle}
        if self.result is None:
            return entry | {"ratio": self.ratio, "refused": self.refused}
        return entry | self.result.to_dict() | {"refused": None}


@dataclass(frozen=True)
class RunComparison:
    """Every compute-matched comparison between two runs, smaller model first."""

    small: ComparedModel
    large: ComparedModel
    large_strategy: str
    large_pass1: float  # the large model's accuracy at its strategy's cheapest rung
    large_tokens_per_query: float
    paired: bool  # both runs hold the same problems: a paired bootstrap, else a two-sample interval
    rows: tuple[MatchedRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"small": self.small.to_dict(),
                "large": self.large.to_dict() | {"strategy": self.large_strategy, "pass1": self.large_pass1,
                                                 "tokens_per_query": self.large_tokens_per_query},
                "paired": self.paired, "comparisons": [r.to_dict() for r in self.rows]}


def compare_runs(
    store: Store,
    run_a: str,
    run_b: str,
    *,
    train_tokens_a: float,
    train_tokens_b: float,
    params_a: float | None = None,
    params_b: float | None = None,
    ratios: Sequence[float] = (),
    strategies: Sequence[str] = (),
    large_strategy: str = "greedy",
    n_boot: int = 1000,
) -> RunComparison:
    """Compare two runs at matched FLOPs (6·N·D training + 2·N per inference token over the deployment).

    The model with fewer parameters is the small one, whichever run it is; its `strategies` (default:
    every non-oracle one) are compared at each of `ratios` (default 0.1, 1, 10) against the large
    model's `large_strategy` at its cheapest rung. Parameter counts default to the model facts the
    runs recorded. A comparison the data cannot support is a refused row, not an error.
    """
    run_a, run_b = store.resolve_run(run_a), store.resolve_run(run_b)
    if run_a == run_b:
        raise ConfigError(f"compare needs two different runs; both name {run_a}")
    infos = {r: store.run(r) for r in (run_a, run_b)}
    specs = {}
    for rid, tokens, override in ((run_a, train_tokens_a, params_a), (run_b, train_tokens_b, params_b)):
        n = override if override is not None else infos[rid].facts.n_params
        if not n or n <= 0:
            raise ConfigError(f"run {rid} records no parameter count; give --params-{'a' if rid == run_a else 'b'}")
        specs[rid] = ModelSpec(f"{infos[rid].model_id.split('@')[0]} ({rid})", float(n), float(tokens))
    small_id, large_id = (run_a, run_b) if specs[run_a].params <= specs[run_b].params else (run_b, run_a)
    small_curves = run_curves(store, small_id, n_boot=max(n_boot, 1))
    large_curves = {c.key: c for c in run_curves(store, large_id, n_boot=max(n_boot, 1))}
    if large_strategy not in large_curves:
        raise ConfigError(f"run {large_id} has no strategy '{large_strategy}'; it has {', '.join(large_curves)}")
    large = large_curves[large_strategy]
    chosen = [c for c in small_curves if (c.key in strategies if strategies else not c.oracle)]
    if strategies and len(chosen) != len(set(strategies)):
        raise ConfigError(f"run {small_id} has strategies {', '.join(c.key for c in small_curves)}")
    same_problems = [(p.problem_id, p.reference) for p in store.problems(small_id)] == \
                    [(p.problem_id, p.reference) for p in store.problems(large_id)]
    large_acc = large.per_problem[:, 0]  # per problem either way: unpaired runs get a two-sample interval
    rows = []
    for c in chosen:
        tokens = [r.tokens for r in c.rungs]
        for ratio in (ratios or DEFAULT_RATIOS):
            try:
                res = compare_at_matched_flops(specs[small_id], tokens, c.per_problem, specs[large_id], large_acc,
                                               large.rungs[0].tokens, ratio=ratio, n_boot=n_boot, seed=0,
                                               paired=same_problems)
            except ConfigError as e:
                rows.append(MatchedRow(c.key, c.label, c.oracle, ratio, refused=str(e)))
            else:
                rows.append(MatchedRow(c.key, c.label, c.oracle, ratio, result=res))
    return RunComparison(ComparedModel(small_id, specs[small_id]), ComparedModel(large_id, specs[large_id]),
                         large_strategy, float(large.per_problem[:, 0].mean()), large.rungs[0].tokens,
                         same_problems, tuple(rows))

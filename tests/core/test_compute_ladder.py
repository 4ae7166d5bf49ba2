"""Budgets in compute: each strategy's knob calibrated so that all sit at matched tokens/FLOPs."""

from __future__ import annotations

import pytest

from oomlab.analysis.curves import run_curves
from oomlab.compute_ladder import knobs_for
from oomlab.errors import ConfigError
from oomlab.store import Store
from oomlab.sweep import Sweep, SweepConfig


def test_knobs_for_takes_the_largest_affordable_knob() -> None:
    # cost = 100 + 10 k: budgets 95 (nothing affordable -> 1), 130 (k=3), 1000 (capped at 8)
    assert knobs_for([95, 130, 1000], fixed=100, per_unit=10, cap=8) == [1, 3, 8]
    assert knobs_for([50], fixed=0, per_unit=0, cap=4) == [4]


def test_compute_ladder_needs_budgets() -> None:
    with pytest.raises(ConfigError, match="needs a --ladder of positive budgets"):
        SweepConfig(budget_unit="flops").validate()
    with pytest.raises(ConfigError, match="valid budget units: flops, samples, tokens"):
        SweepConfig(budget_unit="watts", ladder=[1.0]).validate()


@pytest.mark.slow
def test_token_ladder_matches_strategies(tmp_path, embedded_backend) -> None:
    store = Store(tmp_path / "c.db")
    budgets = [70, 120, 300]
    cfg = SweepConfig(problems=3, n=8, strategies=["majority", "beam"], budget_unit="tokens", ladder=budgets)
    result = Sweep(cfg, store, backend=embedded_backend).run()
    knobs = store.run(result.run_id).config["rungs_by_strategy"]
    assert set(knobs) == {"majority", "beam"} and all(k == sorted(k) and k[0] >= 1 for k in knobs.values())
    curves = {c.key: c for c in run_curves(store, result.run_id, n_boot=100)}
    assert [r.k for r in curves["majority"].rungs] == knobs["majority"]
    assert [r.k for r in curves["beam"].rungs] == knobs["beam"]
    for c in curves.values():  # every rung shown covers every problem, and spends more as the knob grows
        assert c.per_problem.shape == (3, len(c.rungs))
        tokens = [r.tokens for r in c.rungs]
        assert tokens == sorted(tokens)
    # the draw strategy's calibration is exact on the first problem: prompt + k mean completions <= budget
    first = curves["majority"].rungs[0]
    assert first.tokens < 2 * budgets[-1]

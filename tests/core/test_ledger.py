"""FLOPs accounting checked against a brute-force sum over token positions (Kaplan et al. 2020, §2.1)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from oomlab.backends.base import Generation, ModelFacts
from oomlab.ledger import HUMAN_TOKENS_PER_MINUTE, LedgerTotals, Pricing, charge, completion_flops, format_human_time, prompt_flops

FACTS = ModelFacts("m", n_params=300, n_params_non_embedding=100, n_layer=3, d_model=8, d_attn=16, n_ctx_train=64)


def brute_force(facts: ModelFacts, P: int, C: int) -> tuple[float, float]:
    """Per token: 2N + 2 L n_ctx d_attn, n_ctx = the tokens it attends to (itself included)."""
    per = lambda ctx: 2 * facts.n_params_non_embedding + 2 * facts.n_layer * ctx * facts.d_attn  # noqa: E731
    return sum(per(t) for t in range(1, P + 1)), sum(per(P + i) for i in range(1, C + 1))


@given(st.integers(0, 300), st.integers(0, 300))
@settings(max_examples=200, deadline=None)
def test_flops_match_brute_force(P: int, C: int) -> None:
    p, c = brute_force(FACTS, P, C)
    assert math.isclose(prompt_flops(FACTS, P), p, rel_tol=1e-12, abs_tol=1e-9)
    assert math.isclose(completion_flops(FACTS, P, C), c, rel_tol=1e-12, abs_tol=1e-9)


def test_shared_prompt_counted_once_across_its_group() -> None:
    n = 8
    gens = [Generation("x", prompt_tokens=50, completion_tokens=5 + i, seconds=0.5, seed=i, group_size=n) for i in range(n)]
    entries = [charge(g, FACTS, 1.0, False, Pricing(usd_per_hour=3.6)) for g in gens]
    totals = LedgerTotals.of(entries)
    assert math.isclose(totals.prompt_tokens, 50)
    expected = prompt_flops(FACTS, 50) + sum(completion_flops(FACTS, 50, g.completion_tokens) for g in gens)
    assert math.isclose(totals.flops, expected)
    assert math.isclose(totals.dollars, 8 * 0.5 / 3600 * 3.6)
    assert totals.energy_measured is False
    assert math.isclose(totals.human_minutes, sum(g.completion_tokens for g in gens) / HUMAN_TOKENS_PER_MINUTE)


def test_token_pricing_overrides_hourly() -> None:
    p = Pricing(usd_per_hour=100.0, usd_per_m_prompt=1.0, usd_per_m_completion=2.0)
    assert math.isclose(p.dollars(3600, 1e6, 1e6), 3.0)


def test_human_time_units() -> None:
    assert format_human_time(0.5) == "30 s"
    assert format_human_time(30) == "30.0 min"
    assert format_human_time(120) == "2.0 h"
    assert format_human_time(8 * 60 * 2) == "2.0 days"
    assert format_human_time(40 * 60 * 3) == "3.0 weeks"

"""`oomlab serve` chained in front of a llama.cpp server: the usage it reports is the sum of what it asked upstream.

Between the two sits `UsageTap`, the test's own witness: a pass-through that records every
upstream answer's `usage`.
"""

from __future__ import annotations

from typing import Any

import pytest

from oomlab.store import Store
from oomlab.strategies.base import draw_seeds

pytestmark = pytest.mark.slow
NAME = "gemma-upstream"  # the alias the llama.cpp server serves (see conftest)


def summed(records: list[dict[str, Any]]) -> tuple[int, int]:
    return (sum(r["usage"]["prompt_tokens"] for r in records), sum(r["usage"]["completion_tokens"] for r in records))


def test_usage_is_the_sum_of_the_upstream_requests(chained: tuple[Any, Any]) -> None:
    from openai import OpenAI

    server, tap = chained
    client = OpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=120)
    msgs = [{"role": "user", "content": "Name a bird."}]

    plain = client.chat.completions.create(model=NAME, messages=msgs, max_tokens=4, temperature=0)
    assert len(tap.records) == 1 and tap.records[0]["path"].endswith("/chat/completions")  # passed through
    assert (plain.usage.prompt_tokens, plain.usage.completion_tokens) == summed(tap.records)
    assert plain.choices[0].message.content
    sent = tap.records[0]["request"]
    assert sent["messages"] == msgs and sent["max_tokens"] == 4 and "top_k" not in sent  # as the client sent it
    assert 8 * (plain.usage.prompt_tokens + 1) > 100  # so a vote of 8 cannot fit under the 100-token cap below

    before = len(tap.records)
    vote = client.chat.completions.create(model=f"majority-3:{NAME}", messages=msgs, max_tokens=4, seed=7)
    asked = tap.records[before:]
    assert len(asked) == 3 and sorted(r["request"]["seed"] for r in asked) == list(draw_seeds(7, 3))
    # each upstream request bills its own prompt, so usage is the plain sum of the three
    assert (vote.usage.prompt_tokens, vote.usage.completion_tokens) == summed(asked)
    b = vote.model_extra["oomlab"]
    assert b["samples"]["drawn"] == 3 and tap.peak_in_flight >= 2  # the three were sent concurrently
    assert b["usd"] == pytest.approx((vote.usage.prompt_tokens * 1 + vote.usage.completion_tokens * 2) / 1e6)
    assert b["flops"] is None and b["joules"] is None and b["energy"].startswith("unknown")  # no facts, remote power

    # the server's default cap (100 tokens) stops a vote of 8 (each upstream request costs more than 12 tokens)
    before = len(tap.records)
    capped = client.chat.completions.create(model=f"majority-8:{NAME}", messages=msgs, max_tokens=4, seed=9)
    asked = tap.records[before:]
    assert capped.choices[0].finish_reason == "cap_tokens" and 1 <= len(asked) < 8
    assert (capped.usage.prompt_tokens, capped.usage.completion_tokens) == summed(asked)
    assert capped.usage.total_tokens <= 100

    server.stop()
    store = Store(server.db)
    try:
        info = store.run(server.run_id)
        assert info.status == "done" and info.model_id == f"openai:{NAME}"
        assert store.sample_count() == len(tap.records)  # every upstream answer is a sample in the store
    finally:
        store.close()

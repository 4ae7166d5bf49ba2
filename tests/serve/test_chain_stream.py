"""`oomlab serve` chained in front of a llama.cpp server, streaming: the upstream's tokens passed on as they
come, and the usage the upstream counts for the same request.

The chain and its `UsageTap` are conftest's (a module of their own: `test_chain` stops its server).
llama-cpp-python's server sends no usage in a stream, so the openai backend asks it to count the prompt
once (see `OpenAIBackend.stream_usage_fallback`); the tap sees that request too.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow
NAME = "gemma-upstream"  # the alias the llama.cpp server serves (see conftest)
MSGS = [{"role": "user", "content": "Tell me about the sea."}]


def test_streaming_through_the_chain_sends_upstream_tokens_and_its_usage(chained: tuple[Any, Any],
                                                                          llama_upstream: str) -> None:
    from openai import OpenAI

    server, tap = chained
    client = OpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=120)

    def streamed(**kw: Any) -> tuple[list[tuple[float, str]], Any]:
        arrivals, last = [], None
        for ch in client.chat.completions.create(model=NAME, messages=MSGS, max_tokens=8, stream=True,
                                                 stream_options={"include_usage": True}, **kw):
            if ch.choices and ch.choices[0].delta.content:
                arrivals.append((time.perf_counter(), ch.choices[0].delta.content))
            last = ch
        return arrivals, last

    arrivals, last = streamed(temperature=0)
    text = "".join(t for _, t in arrivals)
    assert len(arrivals) > 1, arrivals  # token by token, not the whole answer at the end
    assert arrivals[-1][0] - arrivals[0][0] > 0.03  # over the upstream's decode, not all at once
    assert last is not None and last.choices == [] and last.usage is not None

    [sent] = [r for r in tap.records if r.get("stream")]
    assert sent["request"]["messages"] == MSGS and sent["request"]["stream_options"] == {"include_usage": True}
    assert sent["chunks"] > len(arrivals)  # the upstream's chunks (its role and finish chunks too) came through
    [count] = [r for r in tap.records if not r.get("stream")]
    assert count["request"]["max_tokens"] == 1  # the prompt counted once, by the upstream itself

    # the same request, unstreamed, straight to the upstream: the same text and the same usage
    body = {k: v for k, v in sent["request"].items() if k not in ("stream", "stream_options")}
    up = httpx.post(f"{llama_upstream}/chat/completions", json=body, timeout=120).json()
    assert text == up["choices"][0]["message"]["content"]
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == \
        (up["usage"]["prompt_tokens"], up["usage"]["completion_tokens"])
    assert last.model_extra["oomlab"]["samples"]["drawn"] == 1

    before = len(tap.records)
    arrivals, last = streamed(temperature=0.8, seed=5)  # a sampled draw of the same prompt: no second count
    assert len(arrivals) > 1 and [r.get("stream") for r in tap.records[before:]] == [True]
    assert last.usage.prompt_tokens == up["usage"]["prompt_tokens"]

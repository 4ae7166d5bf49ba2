"""`oomlab serve` as a real process over the embedded model, driven by the official openai client.

One server for the module (started with OOMLAB_API_KEY, a 400-token cap per request and a
budget limit of 32); the last test stops it and reads its run back with `oomlab show` and
`oomlab report`.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from oomlab.store import Store

pytestmark = pytest.mark.slow
MODEL = "gemma-3-270m"


def books(response: Any) -> dict[str, Any]:
    return response.model_extra["oomlab"]


def ask(client: Any, content: str, model: str = MODEL, **kw: Any) -> Any:
    kw.setdefault("max_tokens", 4)
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}], **kw)


def stored_samples(server: Any, problem: int) -> tuple[list[Any], list[Any]]:
    """(the attempt of a served request, the stored samples it names), read from the server's database."""
    store = Store(server.db)
    try:
        attempts = [a for a in store.attempts(server.run_id) if a.problem_idx == problem]
        ids = [i for a in attempts for i in a.sample_ids]
        rows = store.samples(ids)
        return attempts, [rows[i] for i in dict.fromkeys(ids)]
    finally:
        store.close()


def test_health_models_and_a_plain_request(embedded: Any, client: Any) -> None:
    assert httpx.get(f"{embedded.root}/health").json()["model"] == MODEL  # open to probes, no key needed
    ids = [m.id for m in client.models.list().data]
    assert ids[0] == MODEL and f"majority:{MODEL}" in ids and f"best-of-n:{MODEL}" in ids

    r = client.completions.create(model=MODEL, prompt="12 + 5 =", max_tokens=4, temperature=0)
    b = books(r)
    assert r.choices[0].text and r.choices[0].finish_reason in ("stop", "length")
    assert b["strategy"] == "greedy" and b["plain"] and b["samples"] == {"total": 1, "drawn": 1, "cached": 0}
    u = r.usage
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens and 1 <= u.completion_tokens <= 4
    assert b["flops"] > 0 and b["joules"] > 0 and b["usd"] > 0 and b["human_minutes"] > 0
    assert b["energy"].startswith(("estimated", "measured")) and b["trace_id"].startswith(embedded.run_id)
    _, rows = stored_samples(embedded, b["problem"])  # the sample is in the store, as the books say
    assert [r_.generation.text for r_ in rows] == [r.choices[0].text]
    assert rows[0].generation.prompt_tokens == u.prompt_tokens and rows[0].generation.completion_tokens == u.completion_tokens


def test_strategy_by_model_name_and_seeded_cache(embedded: Any, client: Any) -> None:
    r = ask(client, "Name a fruit.", f"majority-4:{MODEL}", seed=11, max_tokens=5, extra_body={"oomlab": {"answer": "line"}})
    b = books(r)
    assert (b["strategy"], b["budget"], b["variant"]) == ("majority", 4, "majority-4")
    assert b["samples"] == {"total": 4, "drawn": 4, "cached": 0}
    attempts, rows = stored_samples(embedded, b["problem"])
    assert len(rows) == 4 and attempts[0].strategy == "majority-4"
    assert r.usage.completion_tokens == sum(x.generation.completion_tokens for x in rows)
    assert r.usage.prompt_tokens == rows[0].generation.prompt_tokens  # one shared prompt, evaluated once
    assert r.choices[0].message.content in [x.generation.text for x in rows]

    again = ask(client, "Name a fruit.", f"majority-4:{MODEL}", seed=11, max_tokens=5,
                extra_body={"oomlab": {"answer": "line"}})
    assert books(again)["samples"] == {"total": 4, "drawn": 0, "cached": 4}  # an identical seeded request
    assert again.choices[0].message.content == r.choices[0].message.content and again.usage == r.usage


def test_strategy_by_extra_body_counts_the_judge(embedded: Any, client: Any) -> None:
    r = ask(client, "What is 3 + 4?", MODEL, seed=5, max_tokens=4,
            extra_body={"oomlab": {"strategy": "best-of-n", "budget": 2, "options": {"scorer": "judge"},
                                   "answer": "number"}})
    b = books(r)
    assert (b["strategy"], b["budget"], b["options"]) == ("best-of-n", 2, {"scorer": "judge"})
    attempts, rows = stored_samples(embedded, b["problem"])
    judged = len(rows) - 2
    assert judged == sum(a is not None for a in attempts[0].trace["answers"])  # one judge sample per answer
    # usage counts every token: the two candidates and the judge's verdicts, each prompt evaluated once
    assert r.usage.completion_tokens == sum(x.generation.completion_tokens for x in rows)
    assert r.usage.prompt_tokens == sum({x.prompt: x.generation.prompt_tokens for x in rows}.values())
    assert b["samples"]["total"] == len(rows)


def test_streaming_sends_tokens_as_decoded_and_usage_last(embedded: Any, client: Any) -> None:
    arrivals: list[tuple[float, str]] = []
    last = None
    stream = ask(client, "Tell me about the sea.", max_tokens=10, temperature=0, stream=True,
                 stream_options={"include_usage": True})
    for ch in stream:
        if ch.choices and ch.choices[0].delta.content:
            arrivals.append((time.perf_counter(), ch.choices[0].delta.content))
        last = ch
    assert last is not None and last.choices == [] and last.usage is not None
    text = "".join(t for _, t in arrivals)
    assert len(arrivals) >= 3, arrivals  # several pieces, not one chunk at the end
    assert arrivals[-1][0] - arrivals[0][0] > 0.03  # and they arrived over the decode, not all at once
    assert last.usage.completion_tokens >= len(arrivals) and books(last)["samples"]["drawn"] == 1

    same = ask(client, "Tell me about the sea.", max_tokens=10, temperature=0)  # greedy: served from the cache
    assert same.choices[0].message.content == text and books(same)["samples"]["cached"] == 1
    assert same.usage == last.usage


def test_streamed_pieces_make_the_unstreamed_completion(embedded: Any, client: Any) -> None:
    def streamed(**kw: Any) -> tuple[list[str], Any]:
        pieces, last = [], None
        for ch in ask(client, "Écris une phrase sur la mer.", stream=True, stream_options={"include_usage": True}, **kw):
            if ch.choices and ch.choices[0].delta.content:
                pieces.append(ch.choices[0].delta.content)
            last = ch
        return pieces, last

    pieces, last = streamed(max_tokens=12, temperature=0, seed=4)
    assert len(pieces) > 1 and books(last)["samples"]["drawn"] == 1
    # greedy decoding ignores top_p, but the cache key does not: the same request drawn afresh, unstreamed
    plain = ask(client, "Écris une phrase sur la mer.", max_tokens=12, temperature=0, seed=4, top_p=0.5)
    assert books(plain)["samples"]["drawn"] == 1
    assert "".join(pieces) == plain.choices[0].message.content and last.usage == plain.usage

    pieces, last = streamed(max_tokens=12, temperature=0.9, seed=11)  # a seeded sample: the same through the cache
    same = ask(client, "Écris une phrase sur la mer.", max_tokens=12, temperature=0.9, seed=11)
    assert len(pieces) > 1 and "".join(pieces) == same.choices[0].message.content
    assert books(last)["samples"]["drawn"] == 1 and books(same)["samples"]["cached"] == 1


def test_streaming_a_search_sends_keepalives_then_the_answer(embedded: Any, api_key: str) -> None:
    body = {"model": f"majority-4:{MODEL}", "messages": [{"role": "user", "content": "Pick a number."}],
            "max_tokens": 6, "seed": 3, "stream": True, "stream_options": {"include_usage": True}}
    lines = []
    with httpx.stream("POST", f"{embedded.base_url}/chat/completions", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {api_key}"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in r.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(ln[6:]) for ln in lines if ln.startswith("data: {")]
    content = [e for e in events if e["choices"] and e["choices"][0]["delta"].get("content")]
    first_content = lines.index(next(ln for ln in lines if ln.startswith("data: {") and json.loads(ln[6:]) in content))
    assert ": keep-alive" in lines[:first_content]  # kept alive while the vote was drawn
    assert len(content) == 1  # then the answer in one piece
    assert events[-1]["usage"]["total_tokens"] > 0 and events[-1]["oomlab"]["samples"]["total"] == 4


def test_caps_stop_a_strategy_with_its_best_answer(embedded: Any, client: Any) -> None:
    P = ask(client, "Say a colour.", max_tokens=1, temperature=0).usage.prompt_tokens
    # 16 samples cost at least P + 16 tokens, so a cap of P + 12 must stop the vote; drawn in pieces, each
    # piece only as large as its worst case (every sample running to max_tokens) allows
    r = ask(client, "Say a colour.", f"majority-16:{MODEL}", seed=2, max_tokens=3,
            extra_body={"oomlab": {"caps": {"tokens": P + 12}, "answer": "line"}})
    b = books(r)
    assert r.choices[0].finish_reason == "cap_tokens" and b["cap"]["cap"] == "tokens"
    assert r.usage.total_tokens <= P + 12 and 4 <= b["samples"]["total"] < 16  # never past the cap
    attempts, rows = stored_samples(embedded, b["problem"])
    assert r.choices[0].message.content in [x.generation.text for x in rows]  # the vote over what was drawn
    assert attempts[0].strategy == f"majority-{len(rows)}" and attempts[0].trace["served"]["asked_budget"] == 16

    # a request asking for more than the server's cap (400 tokens) gets the server's
    r = ask(client, "Say a colour.", f"majority-2:{MODEL}", seed=2, max_tokens=3,
            extra_body={"oomlab": {"caps": {"tokens": 10**9}}})
    assert books(r)["caps"]["tokens"] == 400 and r.choices[0].finish_reason != "cap_tokens"

    # one sample is shortened to fit rather than not drawn
    r = ask(client, "Say a colour.", max_tokens=50, temperature=0, extra_body={"oomlab": {"caps": {"tokens": P + 2}}})
    assert r.usage.total_tokens <= P + 2 and r.choices[0].message.content

    # a search stopped by its cap answers with what it had: revise's first answer, before any critique
    r = client.completions.create(model=f"revise-2:{MODEL}", prompt="7 + 1 =", max_tokens=4, seed=1,
                                  extra_body={"oomlab": {"caps": {"tokens": 30}}})
    b = books(r)
    assert r.choices[0].finish_reason == "cap_tokens" and r.usage.total_tokens <= 30
    assert b["best_so_far"] and b["samples"]["total"] == 1 and r.choices[0].text == b["answer"]


def test_errors_are_openai_style(embedded: Any, client: Any, api_key: str) -> None:
    import openai

    wrong = openai.OpenAI(base_url=embedded.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        ask(wrong, "hi")
    assert e.value.status_code == 401 and e.value.body["code"] == "invalid_api_key"
    assert httpx.get(f"{embedded.base_url}/models").status_code == 401  # no key at all

    with pytest.raises(openai.BadRequestError) as e:
        ask(client, "hi", f"majority-33:{MODEL}")  # over --max-budget 32
    assert e.value.body["code"] == "budget_too_large" and e.value.body["param"] == "oomlab.budget"
    with pytest.raises(openai.BadRequestError) as e:
        ask(client, "hi", f"best-of-n-2:{MODEL}")  # the oracle scorer needs a reference answer
    assert e.value.body["code"] == "oracle_without_reference"
    with pytest.raises(openai.NotFoundError):
        ask(client, "hi", "majority-4:another-model")
    big = httpx.post(f"{embedded.base_url}/completions", content=b"{" + b" " * 200_000 + b"}",
                     headers={"Authorization": f"Bearer {api_key}", "content-type": "application/json"})
    assert big.status_code == 400 and big.json()["error"]["code"] == "body_too_large"


def test_sixteen_concurrent_clients_and_failures_that_disturb_nobody(embedded: Any, client: Any) -> None:
    import openai

    def good(i: int) -> Any:
        return ask(client, f"Count to {i + 2}.", max_tokens=3, temperature=0)

    def bad(kind: int) -> int:
        try:
            if kind == 0:
                ask(client, "hi", f"majority-2[no_such_option=1]:{MODEL}")
            else:
                ask(client, "word " * 1100)  # longer than the 1024-token context
        except openai.BadRequestError as e:
            return e.status_code
        return 200

    peak, stop = [0], threading.Event()

    def watch() -> None:  # the event loop stays free: /health answers while the engine is busy
        while not stop.is_set():
            t = time.perf_counter()
            health = httpx.get(f"{embedded.root}/health", timeout=5).json()
            assert time.perf_counter() - t < 2.0
            peak[0] = max(peak[0], health["in_flight"])
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(18) as pool:
            goods = [pool.submit(good, i) for i in range(16)]
            bads = [pool.submit(bad, k) for k in (0, 1)]
            results = [f.result() for f in goods]
            assert [f.result() for f in bads] == [400, 400]
    finally:
        stop.set()
        watcher.join()
    assert len({books(r)["problem"] for r in results}) == 16 and all(r.choices[0].message.content for r in results)
    assert peak[0] >= 2  # accepted together, decoded one batch at a time (the embedded engine's limit)
    assert ask(client, "Count to 2.", max_tokens=3, temperature=0).choices[0].message.content == \
        results[0].choices[0].message.content


def test_the_served_run_reads_back_with_show_and_report(embedded: Any, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from oomlab.cli import app

    assert embedded.stop() == 0
    assert "stopped" in embedded.log()
    db, run, cli = str(embedded.db), embedded.run_id, CliRunner()

    def oomlab(*args: str) -> str:
        done = cli.invoke(app, list(args))
        assert done.exit_code == 0, done.output
        return done.output

    (info,) = [r for r in json.loads(oomlab("runs", "--db", db, "--json")) if r["id"] == run]
    assert info["status"] == "done" and info["task"] == "served"
    assert {"greedy-1", "majority-4", "best-of-n-2[scorer=judge]"} <= set(info["strategies"])
    shown = json.loads(oomlab("show", run, "--db", db, "--json"))
    curves = {c["strategy"]: c for c in shown["curves"]}
    assert curves["majority-4"]["rungs"][0]["k"] == 4 and shown["complete"]
    assert "majority" in oomlab("show", run, "--db", db)
    out = tmp_path / "served.html"
    oomlab("report", run, "--db", db, "-o", str(out), "--n-boot", "0")
    assert "majority" in out.read_text()

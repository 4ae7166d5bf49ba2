"""The openai backend against real servers on 127.0.0.1: llama-cpp-python's, and tiny scripted ones."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from oomlab.backends import BACKENDS, GenRequest, SamplingParams, create_backend
from oomlab.backends.http import retry_after_seconds
from oomlab.backends.openai import UNKNOWN_FACTS_SOURCE, OpenAIBackend
from oomlab.errors import BackendError, ConfigError

PROMPT = "The capital of France is"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- a tiny scripted server -------------------------------------------------------------------
def completion_body(text: str = " Paris.", usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "cmpl-1",
        "object": "text_completion",
        "model": "scripted",
        "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9}
    return body


class ScriptedServer:
    """A real HTTP server: answers POSTs with `script` in order (the last entry repeats)."""

    def __init__(self, script: list[tuple[int, dict[str, Any], dict[str, str]]], delay: float = 0.0, models: tuple[str, ...] = ()):
        self.script, self.delay, self.models = script, delay, models
        self.hits: list[dict[str, Any]] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # GET /models
                self.reply(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in owner.models]}, {})

            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner.lock:
                    owner.hits.append(payload)
                    status, body, headers = owner.script[min(len(owner.hits), len(owner.script)) - 1]
                    owner.in_flight += 1
                    owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
                time.sleep(owner.delay)
                with owner.lock:
                    owner.in_flight -= 1
                self.reply(status, body, headers)

            def reply(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


OK = (200, completion_body(), {})
FAIL = (500, {"error": "boom"}, {})


def backend_for(url: str, **kw: Any) -> OpenAIBackend:
    kw.setdefault("model", "scripted")
    kw.setdefault("backoff", 0.01)
    return OpenAIBackend(base_url=url, **kw)


def req(n: int = 1, **params: Any) -> GenRequest:
    return GenRequest(PROMPT, SamplingParams(**{"max_tokens": 8, **params}), seeds=tuple(range(1, n + 1)))


# -- fast tests: scripted servers -------------------------------------------------------------
def test_registered() -> None:
    assert BACKENDS.get("openai") is OpenAIBackend


def test_retries_500_then_succeeds() -> None:
    with ScriptedServer([FAIL, FAIL, OK]) as srv:
        b = backend_for(srv.base_url, max_retries=3)
        try:
            [g] = b.generate(req())
        finally:
            b.close()
    assert len(srv.hits) == 3
    assert (g.text, g.prompt_tokens, g.completion_tokens, g.finish_reason) == (" Paris.", 6, 3, "stop")


def test_gives_up_after_bounded_attempts() -> None:
    with ScriptedServer([FAIL]) as srv:
        b = backend_for(srv.base_url, max_retries=2)
        with pytest.raises(BackendError, match=r"after 3 attempts: HTTP 500") as e:
            b.generate(req())
        b.close()
    assert len(srv.hits) == 3
    assert srv.base_url + "/completions" in str(e.value)


def test_client_error_is_not_retried() -> None:
    with ScriptedServer([(400, {"error": "bad request"}, {}), OK]) as srv, backend_for(srv.base_url) as b:
        with pytest.raises(BackendError, match="HTTP 400"):
            b.generate(req())
    assert len(srv.hits) == 1


def test_honours_retry_after() -> None:
    with ScriptedServer([(429, {"error": "slow down"}, {"Retry-After": "1"}), OK]) as srv:
        with backend_for(srv.base_url, max_retries=1) as b:
            start = time.monotonic()
            b.generate(req())
            elapsed = time.monotonic() - start
    assert len(srv.hits) == 2
    assert elapsed >= 0.9  # the backoff alone would wait at most 0.01 s


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_missing_usage_is_a_clear_error() -> None:
    with ScriptedServer([(200, completion_body(usage=False), {})]) as srv, backend_for(srv.base_url) as b:
        with pytest.raises(BackendError, match="did not report usage"):
            b.generate(req())


def test_unreachable_server_fails_fast_with_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    b = backend_for(url, max_retries=2, backoff=0.05, timeout=5.0)
    start = time.monotonic()
    with pytest.raises(BackendError) as e:
        b.generate(req())
    elapsed = time.monotonic() - start
    b.close()
    assert f"cannot reach {url}/completions after 3 attempts: ConnectError" in str(e.value)
    assert elapsed < 5.0


def test_one_request_per_seed_with_bounded_concurrency() -> None:
    with ScriptedServer([OK], delay=0.2) as srv, backend_for(srv.base_url, concurrency=2) as b:
        gens = b.generate(req(n=6, temperature=0.7, top_k=20, top_p=0.9, stop=("\n",)))
    assert [g.seed for g in gens] == [1, 2, 3, 4, 5, 6]
    assert all(g.group_size == 6 for g in gens)
    assert sorted(h["seed"] for h in srv.hits) == [1, 2, 3, 4, 5, 6]
    assert srv.max_in_flight == 2
    hit = srv.hits[0]
    assert (hit["temperature"], hit["top_k"], hit["top_p"], hit["stop"], hit["max_tokens"]) == (0.7, 20, 0.9, ["\n"], 8)
    assert sum(g.seconds for g in gens) >= 0.55  # 6 requests, 2 at a time, 0.2 s each: ~0.6 s apportioned


def test_generate_inside_a_running_event_loop() -> None:
    with ScriptedServer([OK]) as srv, backend_for(srv.base_url) as b:

        async def main() -> int:
            return len(b.generate(req(n=2)))

        assert asyncio.run(main()) == 2


def test_model_from_models_endpoint_and_stable_id() -> None:
    with ScriptedServer([OK], models=("m-first", "m-second")) as srv, backend_for(srv.base_url, model=None) as b:
        assert b.model == "m-first"
        assert b.model_id == "openai:m-first"  # the model, not the URL it was reached at
        assert b.endpoint == srv.base_url
    with ScriptedServer([OK]) as srv, pytest.raises(BackendError, match="lists no models"):
        backend_for(srv.base_url, model=None)


# -- model facts ------------------------------------------------------------------------------
def test_facts_unknown_by_default() -> None:
    with backend_for("http://127.0.0.1:9/v1") as b:  # no request is sent when model is given
        assert b.facts.source == UNKNOWN_FACTS_SOURCE
        assert b.facts.n_params == b.facts.n_params_non_embedding == 0


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_facts_from_file(tmp_path: Path, suffix: str) -> None:
    facts = {"n_params": 8.03e9, "n_params_non_embedding": 6.98e9, "n_layer": 32, "d_model": 4096, "n_ctx_train": 131072}
    path = tmp_path / f"llama.{suffix.lstrip('.')}"
    if suffix == ".json":
        path.write_text(json.dumps(facts))
    else:
        path.write_text("n_params: 8.03e9\nn_params_non_embedding: 6.98e+9\nn_layer: 32\nd_model: 4096\nn_ctx_train: 131072\n")
    with backend_for("http://127.0.0.1:9/v1", facts_file=path, d_attn=2048) as b:
        f = b.facts
    assert (f.n_params, f.n_params_non_embedding, f.n_layer, f.d_model, f.n_ctx_train) == (
        8_030_000_000, 6_980_000_000, 32, 4096, 131072,
    )  # fmt: skip
    assert f.d_attn == 2048  # a keyword overrides the file
    assert f.source == f"facts file {path.name} + flags"
    assert f.model_id == b.model_id


def test_facts_from_keywords_and_bad_files(tmp_path: Path) -> None:
    with backend_for("http://127.0.0.1:9/v1", n_params=7e9) as b:
        assert (b.facts.n_params, b.facts.n_params_non_embedding, b.facts.d_attn, b.facts.source) == (
            7_000_000_000, 7_000_000_000, 0, "flags",
        )  # fmt: skip
    bad = tmp_path / "bad.yaml"
    bad.write_text("n_params: 1e9\nn_layers: 12\n")
    with pytest.raises(ConfigError, match="unknown key.*n_layers"):
        backend_for("http://127.0.0.1:9/v1", facts_file=bad)
    with pytest.raises(ConfigError, match="cannot read facts file"):
        backend_for("http://127.0.0.1:9/v1", facts_file=tmp_path / "missing.json")


# -- slow tests: llama-cpp-python's real server ---------------------------------------------
@pytest.fixture(scope="module")
def served(llama_server: str) -> Iterator[OpenAIBackend]:
    b = create_backend("openai", base_url=llama_server)  # model=None: the first id from GET /models
    assert isinstance(b, OpenAIBackend)
    yield b
    b.close()


@pytest.mark.slow
def test_served_model_discovered(served: OpenAIBackend) -> None:
    assert served.model.endswith(".gguf")
    assert served.model_id == f"openai:{served.model}"


@pytest.mark.slow
def test_completions_n_samples_with_logprobs(served: OpenAIBackend) -> None:
    # llama-cpp-python's server sorts the whole 262k vocabulary per token for logprobs (~1 s/token): keep it short
    gens = served.generate(GenRequest(PROMPT, SamplingParams(temperature=0.8, max_tokens=6), seeds=(1, 2, 3), logprobs=True))
    assert [g.seed for g in gens] == [1, 2, 3]
    assert len({g.text for g in gens}) >= 2  # different seeds, different samples
    for g in gens:
        assert g.prompt_tokens > 0 and g.completion_tokens > 0
        assert g.finish_reason in ("stop", "length")
        assert g.group_size == 3 and g.seconds > 0
        assert g.token_logprobs is not None and len(g.token_logprobs) == g.completion_tokens
        assert all(lp <= 0.0 for lp in g.token_logprobs)


@pytest.mark.slow
def test_seed_and_top_k_are_honoured(served: OpenAIBackend) -> None:
    same = served.generate(GenRequest(PROMPT, SamplingParams(temperature=1.0, max_tokens=8), seeds=(7, 7)))
    assert same[0].text == same[1].text  # one seed, one sample
    top1 = served.generate(GenRequest(PROMPT, SamplingParams(temperature=1.5, top_k=1, max_tokens=8), seeds=(1, 2, 3)))
    greedy = served.generate(GenRequest(PROMPT, SamplingParams(temperature=0.0, max_tokens=8), seeds=(4,)))
    assert {g.text for g in top1} == {greedy[0].text}  # top_k=1 is greedy whatever the temperature


@pytest.mark.slow
def test_greedy_is_repeatable(served: OpenAIBackend) -> None:
    request = GenRequest("1, 2, 3, 4,", SamplingParams(temperature=0.0, max_tokens=8, stop=("\n",)), seeds=(0,))
    [a] = served.generate(request)
    [b] = served.generate(request)
    assert a.text == b.text and a.text.strip()
    assert a.finish_reason in ("stop", "length")


@pytest.mark.slow
def test_chat_endpoint(served: OpenAIBackend) -> None:
    request = GenRequest("Write one sentence about Paris.", SamplingParams(temperature=0.0, max_tokens=6), seeds=(0,), logprobs=True, chat=True)
    [g] = served.generate(request)
    assert g.text.strip() and g.completion_tokens > 0
    assert g.prompt_tokens > len("Write one sentence about Paris.".split())  # the chat template's tokens count too
    assert g.token_logprobs is not None and len(g.token_logprobs) == g.completion_tokens


# -- streaming (on_token) ---------------------------------------------------------------------
class SSEServer:
    """A real HTTP server that answers each POST with server-sent events: `pieces` as completion chunks, then
    (when `usage`) a usage chunk and [DONE]; with `break_after`, the connection closes after that many chunks."""

    def __init__(self, pieces: list[str], usage: dict[str, int] | None = None, break_after: int | None = None):
        self.hits: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.hits.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                events = [{"choices": [{"index": 0, "text": p, "finish_reason": None}]} for p in pieces]
                events.append({"choices": [{"index": 0, "text": "", "finish_reason": "length"}]})
                if usage is not None:
                    events.append({"choices": [], "usage": usage})
                for k, event in enumerate(events):
                    if break_after is not None and k == break_after:
                        return  # the connection closes mid-stream
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> SSEServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_streamed_tokens_and_usage_from_the_last_chunk() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8,
             "prompt_tokens_details": {"cached_tokens": 2}}
    with SSEServer([" Par", "is", "."], usage=usage) as srv, backend_for(srv.base_url) as b:
        seen: list[tuple[int, str]] = []
        [g] = b.generate(req(), on_token=lambda i, t: seen.append((i, t)))
    assert seen == [(0, " Par"), (0, "is"), (0, ".")]
    assert (g.text, g.prompt_tokens, g.completion_tokens, g.finish_reason) == (" Paris.", 5, 3, "length")
    assert g.billed_prompt_tokens == 3
    assert srv.hits[0]["stream"] is True and srv.hits[0]["stream_options"] == {"include_usage": True}


def test_stream_is_retried_before_its_first_token_only() -> None:
    # a 500, then a server that ignores `stream` and answers JSON: retried, and the answer handed on whole
    with ScriptedServer([FAIL, OK]) as srv, backend_for(srv.base_url, max_retries=2) as b:
        seen: list[str] = []
        [g] = b.generate(req(), on_token=lambda i, t: seen.append(t))
        waste = b.take_waste()
    assert len(srv.hits) == 2 and seen == [" Paris."] and (g.prompt_tokens, g.completion_tokens) == (6, 3)
    assert [w.reason for w in waste] == ["HTTP 500"]
    # a stream that breaks after its first piece is not retried: the client has seen text a retry might not draw
    with SSEServer([" a", " b", " c"], usage={"prompt_tokens": 5, "completion_tokens": 3},
                   break_after=1) as srv, backend_for(srv.base_url, max_retries=3) as b:
        seen = []
        with pytest.raises(BackendError, match="broke after 1 piece"):
            b.generate(req(), on_token=lambda i, t: seen.append(t))
        waste = b.take_waste()
    assert len(srv.hits) == 1 and seen == [" a"]
    assert len(waste) == 1 and waste[0].reason.startswith("dropped connection")


@pytest.mark.slow
def test_streaming_from_a_real_server_gives_the_unstreamed_books(served: OpenAIBackend) -> None:
    # llama-cpp-python's server streams one chunk per token and no usage: see stream_usage_fallback
    for chat in (False, True):
        request = GenRequest("Tell me about the sea.", SamplingParams(temperature=0.0, max_tokens=8), seeds=(3,),
                             chat=chat)
        pieces: list[str] = []
        [g] = served.generate(request, on_token=lambda i, t: pieces.append(t))
        waste = served.take_waste()
        [plain] = served.generate(request)
        assert len(pieces) > 1 and "".join(pieces) == g.text == plain.text
        assert (g.prompt_tokens, g.completion_tokens, g.finish_reason) == \
            (plain.prompt_tokens, plain.completion_tokens, plain.finish_reason)
        # the one-token request that counted the prompt is on the books as waste, with the server's own usage
        assert [(w.prompt_tokens, w.completion_tokens, w.estimated) for w in waste] == [(plain.prompt_tokens, 1, False)]

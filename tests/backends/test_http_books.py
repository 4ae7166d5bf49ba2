"""The openai backend's books against real servers on 127.0.0.1: what the server did is what is booked.

Per-sample delivery, waits apart from device time, billed prompt tokens, waste from retried and
abandoned tries, a silent server's countdown, and a cache key that names the model rather than the
URL. The scripted servers here are real HTTP servers of the test's own; the fault-injecting proxy
sits in front of the real llama-cpp-python server (the `llama_server` fixture).
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from oomlab.backends import GenRequest, Generation, SamplingParams
from oomlab.backends.base import Waste
from oomlab.backends.openai import OpenAIBackend
from oomlab.errors import BackendError
from oomlab.store import cache_key

PROMPT = "The capital of France is"
USAGE = {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def completion(usage: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body = {"choices": [{"index": 0, "text": " Paris.", "finish_reason": "stop"}], "usage": usage or USAGE}
    return {**body, **extra}


def wait_for_disconnect(conn: socket.socket, limit: float = 30.0) -> None:
    """Hold a request open until the client hangs up (what a server that never answers looks like)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        readable, _, _ = select.select([conn], [], [], 0.05)
        if readable:
            try:
                if not conn.recv(1024):
                    return
            except OSError:
                return


# A reply: (status, body) to answer; "hang" to hold until the client leaves; "drop" to close unanswered;
# "trickle" to send an answer that never ends.
Reply = tuple[int, dict[str, Any]] | str


class LocalServer:
    """A real threaded HTTP server; `respond(payload, hit_number)` decides each POST's reply."""

    def __init__(self, respond: Callable[[dict[str, Any], int], Reply], models: tuple[str, ...] = ("scripted",)):
        self.hits: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.answer(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in models]})

            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner.lock:
                    owner.hits.append(payload)
                    number = len(owner.hits)
                    owner.in_flight += 1
                try:
                    reply = respond(payload, number)
                    if reply == "hang":
                        wait_for_disconnect(self.connection)
                    elif reply == "trickle":  # a byte at a time, never done: each read is quick
                        self.send_response(200)
                        self.send_header("Content-Length", "100000")
                        self.end_headers()
                        try:
                            for _ in range(2000):
                                self.wfile.write(b" ")
                                self.wfile.flush()
                                time.sleep(0.05)
                        except OSError:
                            pass
                    elif reply != "drop":
                        assert isinstance(reply, tuple)
                        self.answer(*reply)
                finally:
                    with owner.lock:
                        owner.in_flight -= 1

            def answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up first

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Callable[..., LocalServer]]:
    made: list[LocalServer] = []

    def make(respond: Callable[[dict[str, Any], int], Reply], **kw: Any) -> LocalServer:
        made.append(LocalServer(respond, **kw))
        return made[-1]

    yield make
    for s in made:
        s.close()


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A port that accepts connections (the kernel completes the handshake) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def backend(url: str, **kw: Any) -> OpenAIBackend:
    kw.setdefault("model", "scripted")
    kw.setdefault("backoff", 0.01)
    return OpenAIBackend(base_url=url, **kw)


def req(n: int = 1, **params: Any) -> GenRequest:
    return GenRequest(PROMPT, SamplingParams(**{"max_tokens": 8, **params}), seeds=tuple(range(1, n + 1)))


def totals(items: list[Generation] | list[Waste]) -> tuple[int, int, int]:
    return len(items), sum(x.prompt_tokens for x in items), sum(x.completion_tokens for x in items)


# -- delivery ---------------------------------------------------------------------------------
def test_a_sample_is_delivered_while_its_siblings_are_still_running(server: Callable[..., LocalServer]) -> None:
    first_delivered = threading.Event()

    def respond(payload: dict[str, Any], n: int) -> Reply:
        if payload["seed"] == 2 and not first_delivered.wait(timeout=10):
            return (500, {"error": "seed 1 was not delivered while seed 2 was in flight"})
        return (200, completion())

    def commit(i: int, g: Generation) -> None:
        assert threading.current_thread() is threading.main_thread()
        first_delivered.set()

    srv = server(respond)
    with backend(srv.base_url, concurrency=2, max_retries=0) as b:
        gens = b.generate(req(n=2), on_sample=commit)
    assert [g.seed for g in gens] == [1, 2]


# -- billed tokens and time -------------------------------------------------------------------
def test_billed_prompt_tokens_less_cached(server: Callable[..., LocalServer]) -> None:
    """A scripted server: llama-cpp-python's server does not report prompt_tokens_details.cached_tokens."""
    cached = {**USAGE, "prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 8}}
    srv = server(lambda p, n: (200, completion(cached if p["seed"] == 1 else None)))
    with backend(srv.base_url) as b:
        first, second = b.generate(req(n=2))
    assert (first.prompt_tokens, first.billed_prompt_tokens) == (10, 2)  # FLOPs see all 10; the bill sees 2
    assert (second.prompt_tokens, second.billed_prompt_tokens) == (6, 6)  # nothing cached reported: all billed


def test_server_reported_timings_are_the_seconds(server: Callable[..., LocalServer]) -> None:
    timings = {"prompt_n": 6, "prompt_ms": 120.0, "predicted_n": 3, "predicted_ms": 380.0}
    srv = server(lambda p, n: (200, completion(timings=timings)))
    with backend(srv.base_url) as b:
        [g] = b.generate(req())
    assert g.seconds == pytest.approx(0.5)


def test_waits_are_not_device_time(server: Callable[..., LocalServer]) -> None:
    def respond(payload: dict[str, Any], n: int) -> Reply:
        time.sleep(0.2)
        return (200, completion())

    srv = server(respond)
    with backend(srv.base_url, concurrency=1) as b:
        start = time.perf_counter()
        gens = b.generate(req(n=3))
        wall = time.perf_counter() - start
    # one at a time: each request is in flight alone for ~0.2 s; the others queue meanwhile
    assert all(0.19 <= g.seconds < 1.0 for g in gens)
    assert sum(g.seconds for g in gens) <= wall
    assert sorted(g.wait_seconds for g in gens)[-1] >= 0.38  # the last one queued behind two
    assert b.take_waste() == []


def test_concurrent_tries_share_the_busy_time(server: Callable[..., LocalServer]) -> None:
    """Four requests in flight together for 0.3 s cost the server 0.3 s, not 1.2 s."""

    def respond(payload: dict[str, Any], n: int) -> Reply:
        time.sleep(0.3)
        return (200, completion())

    srv = server(respond)
    with backend(srv.base_url, concurrency=4) as b:
        start = time.perf_counter()
        gens = b.generate(req(n=4))
        wall = time.perf_counter() - start
    assert 0.29 <= sum(g.seconds for g in gens) <= wall


# -- waste ------------------------------------------------------------------------------------
def test_retried_500s_are_waste_estimated_from_the_retry(server: Callable[..., LocalServer]) -> None:
    srv = server(lambda p, n: (500, {"error": "boom"}) if n <= 2 else (200, completion()))
    with backend(srv.base_url, max_retries=3) as b:
        [g] = b.generate(req())
        waste = b.take_waste()
        assert b.take_waste() == []  # taken once
    assert len(srv.hits) == 3
    assert [(w.prompt_tokens, w.completion_tokens, w.reason, w.url, w.estimated) for w in waste] == [
        (6, 3, "HTTP 500", srv.base_url + "/completions", True)
    ] * 2
    assert g.wait_seconds >= sum(w.seconds for w in waste)  # the failed tries' time is a wait for this sample


def test_rate_limits_and_connect_errors_are_waits_not_waste(server: Callable[..., LocalServer]) -> None:
    srv = server(lambda p, n: (429, {"error": "slow down"}) if n == 1 else (200, completion()))
    with backend(srv.base_url, max_retries=1) as b:
        [g] = b.generate(req())
        assert b.take_waste() == []  # a 429 says the server did not take the request
    assert g.wait_seconds > 0
    with backend(f"http://127.0.0.1:{free_port()}/v1", max_retries=1) as b:
        with pytest.raises(BackendError, match="cannot reach"):
            b.generate(req())
        assert b.take_waste() == []  # never reached the server


def test_a_failed_sample_keeps_delivered_siblings_and_books_its_tries(server: Callable[..., LocalServer]) -> None:
    def respond(payload: dict[str, Any], n: int) -> Reply:
        if payload["seed"] == 2:
            time.sleep(0.3)  # its siblings finish first
            return (500, {"error": "boom"})
        return (200, completion())

    srv = server(respond)
    delivered: dict[int, Generation] = {}
    with backend(srv.base_url, max_retries=1, concurrency=3) as b:
        with pytest.raises(BackendError, match="after 2 attempts: HTTP 500"):
            b.generate(req(n=3), on_sample=delivered.__setitem__)
        waste = b.take_waste()
    assert sorted(delivered) == [0, 2] and delivered[0].seed == 1
    # the failed request's usage is unknown; its prompt is the siblings' prompt
    assert [(w.prompt_tokens, w.completion_tokens, w.reason) for w in waste] == [(6, 0, "HTTP 500; completion tokens unknown")] * 2


def test_cancelled_siblings_in_flight_are_waste(server: Callable[..., LocalServer]) -> None:
    arrived = threading.Barrier(4, timeout=10)

    def respond(payload: dict[str, Any], n: int) -> Reply:
        arrived.wait()  # all four are at the server before anything is answered
        if payload["seed"] == 1:
            return (200, completion())
        if payload["seed"] == 2:
            time.sleep(0.5)  # after seed 1 has been delivered
            return (400, {"error": "bad request"})  # refused: not retried, fails the group
        return "hang"

    srv = server(respond)
    delivered: list[int] = []
    with backend(srv.base_url, concurrency=4) as b:
        start = time.monotonic()
        with pytest.raises(BackendError, match="refused"):
            b.generate(req(n=4), on_sample=lambda i, g: delivered.append(i))
        assert time.monotonic() - start < 5
        waste = b.take_waste()
    assert delivered == [0]
    assert sorted((w.prompt_tokens, w.completion_tokens, w.reason) for w in waste) == [(6, 0, "cancelled; completion tokens unknown")] * 2


def test_an_unusable_answer_is_waste(server: Callable[..., LocalServer]) -> None:
    srv = server(lambda p, n: (200, {"choices": [{"text": "x", "finish_reason": "stop"}]}))
    with backend(srv.base_url) as b:
        with pytest.raises(BackendError, match="did not report usage"):
            b.generate(req())
        [w] = b.take_waste()
    assert (w.prompt_tokens, w.completion_tokens, w.reason) == (0, 0, "unusable answer; tokens unknown")


def test_on_sample_failure_cancels_the_rest(server: Callable[..., LocalServer]) -> None:
    srv = server(lambda p, n: (200, completion()) if p["seed"] == 1 else "hang")

    def commit(i: int, g: Generation) -> None:
        raise RuntimeError("disk full")

    with backend(srv.base_url, concurrency=2) as b:
        start = time.monotonic()
        with pytest.raises(RuntimeError, match="disk full"):
            b.generate(req(n=2), on_sample=commit)
        assert time.monotonic() - start < 5
        [w] = b.take_waste()
    assert (w.prompt_tokens, w.reason) == (6, "cancelled; completion tokens unknown")


# -- a silent server --------------------------------------------------------------------------
def test_a_silent_server_fails_within_the_timeout_with_a_countdown(silent_url: str) -> None:
    lines: list[str] = []
    with backend(silent_url, timeout=0.4, max_retries=2, status_interval=0.1, on_status=lines.append) as b:
        start = time.monotonic()
        with pytest.raises(BackendError) as e:
            b.generate(req())
        elapsed = time.monotonic() - start
        waste = b.take_waste()
    url = silent_url + "/completions"
    assert 1.2 <= elapsed < 1.2 + 2.0  # timeout x tries, plus backoff and slack
    assert f"no answer within 0.4 s from {url} after 3 attempts: ReadTimeout" in str(e.value)
    countdown = [line for line in lines if line.startswith(f"no answer from {url} yet")]
    assert any("try 1/3, giving up in 1 s" in line for line in countdown)
    assert any("try 3/3, giving up in 0 s" in line for line in countdown)
    assert any("try 2/3 in" in line for line in lines)  # the retries are announced too
    # it may have been computed, but nothing says how much
    assert [(w.prompt_tokens, w.completion_tokens, w.reason) for w in waste] == [(0, 0, "ReadTimeout; tokens unknown")] * 3


def test_a_trickling_answer_is_cut_off_at_the_timeout(server: Callable[..., LocalServer]) -> None:
    srv = server(lambda p, n: "trickle")
    with backend(srv.base_url, timeout=0.4, max_retries=1) as b:
        start = time.monotonic()
        with pytest.raises(BackendError, match="no answer within 0.4 s"):
            b.generate(req())
        assert time.monotonic() - start < 0.8 + 2.0
        assert [w.reason for w in b.take_waste()] == ["ReadTimeout; tokens unknown"] * 2


def test_status_goes_to_the_log_at_most_once_per_interval(silent_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="oomlab.backends.http"):
        with backend(silent_url, timeout=0.5, max_retries=1, status_interval=0.2) as b:
            start = time.monotonic()
            with pytest.raises(BackendError):
                b.generate(req(n=3))
            elapsed = time.monotonic() - start
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all(silent_url in w for w in warnings)
    assert len(warnings) <= elapsed / 0.2 + 1  # three silent requests, one line per interval


def test_the_startup_probe_has_a_short_timeout(silent_url: str) -> None:
    start = time.monotonic()
    with pytest.raises(BackendError) as e:
        OpenAIBackend(base_url=silent_url, model=None, timeout=60, probe_timeout=0.3, probe_retries=1, backoff=0.01)
    assert time.monotonic() - start < 0.6 + 2.0
    assert f"no answer within 0.3 s from {silent_url}/models after 2 attempts" in str(e.value)


# -- identity ---------------------------------------------------------------------------------
def test_the_cache_key_names_the_model_not_the_url(server: Callable[..., LocalServer]) -> None:
    srv = server(lambda p, n: (200, completion()), models=("gemma-270m",))
    port = srv.base_url.split(":")[2].split("/")[0]
    with (
        backend(srv.base_url, model=None) as a,
        backend(f"http://localhost:{port}/v1", model=None) as b,
        backend(srv.base_url, model="gemma", model_identity="gemma-270m") as c,
    ):
        assert a.model_id == b.model_id == c.model_id == "openai:gemma-270m"
        assert (a.endpoint, b.endpoint) == (srv.base_url, f"http://localhost:{port}/v1")
        assert a.facts.model_id == a.model_id
        params = SamplingParams()
        assert cache_key(a.model_id, PROMPT, params, 1) == cache_key(b.model_id, PROMPT, params, 1)
        assert a.remote is True and a.server_watts is None
    with backend(srv.base_url, server_watts=700) as d:
        assert d.server_watts == 700.0
    with pytest.raises(BackendError, match="server_watts"):
        backend(srv.base_url, server_watts=0)


# -- the real server, directly and through a faulty proxy -------------------------------------
@pytest.mark.slow
def test_samples_reach_the_callers_thread_as_they_finish(llama_server: str) -> None:
    seen: list[tuple[int, int, Generation]] = []
    with OpenAIBackend(base_url=llama_server) as b:
        gens = b.generate(
            GenRequest(PROMPT, SamplingParams(temperature=0.8, max_tokens=6), seeds=(1, 2, 3)),
            on_sample=lambda i, g: seen.append((i, threading.get_ident(), g)),
        )
    assert sorted(i for i, _, _ in seen) == [0, 1, 2]  # each one, before generate returned
    assert {t for _, t, _ in seen} == {threading.get_ident()}
    assert all(gens[i] == g for i, _, g in seen)
    for g in gens:
        # llama-cpp-python reports no cached_tokens, so every prompt token is billed
        assert g.billed_prompt_tokens == g.prompt_tokens > 0
        assert g.seconds > 0 and g.wait_seconds >= 0


class FaultyProxy:
    """In front of a real server: forwards every request upstream, counts the usage upstream computed,
    then answers per `schedule[seed]` (one action per try): "ok" (the real answer), "500", "drop"
    (close the connection unanswered) or "delay" (hold the answer until the client gives up)."""

    def __init__(self, upstream: str, schedule: dict[int, list[str]]):
        self.upstream_root = upstream.removesuffix("/v1")
        self.schedule = schedule
        self.computed: list[tuple[int, int, int]] = []  # (seed, prompt_tokens, completion_tokens) upstream
        self.tries: Counter[int] = Counter()
        self.delivered: list[tuple[int, Any, float]] = []  # (seed, prompt, when) of every real answer sent
        self.lock = threading.Lock()
        self.in_flight = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                r = httpx.get(owner.upstream_root + self.path, timeout=30)
                self.answer(r.status_code, r.content)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                seed = json.loads(raw)["seed"]
                with owner.lock:
                    owner.in_flight += 1
                    k = owner.tries[seed]
                    owner.tries[seed] += 1
                    actions = owner.schedule.get(seed, [])
                    action = actions[k] if k < len(actions) else "ok"
                try:
                    r = httpx.post(owner.upstream_root + self.path, content=raw,
                                   headers={"Content-Type": "application/json"}, timeout=120)
                    usage = r.json()["usage"]
                    with owner.lock:
                        owner.computed.append((seed, usage["prompt_tokens"], usage["completion_tokens"]))
                    if action == "ok":
                        self.answer(r.status_code, r.content)
                        with owner.lock:
                            owner.delivered.append((seed, json.loads(raw).get("prompt"), time.monotonic()))
                    elif action == "500":
                        self.answer(500, b'{"error": "injected"}')
                    elif action == "delay":
                        wait_for_disconnect(self.connection)
                    # "drop": return without a word; the server closes the connection
                finally:
                    with owner.lock:
                        owner.in_flight -= 1

            def answer(self, status: int, data: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def settle(self, limit: float = 60.0) -> None:
        """Wait until no request is being forwarded (a cancelled one may still be computing upstream)."""
        deadline = time.monotonic() + limit
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not self.in_flight

    def __enter__(self) -> FaultyProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


BOOKED = lambda g: (g.seed, g.text, g.prompt_tokens, g.completion_tokens, g.finish_reason)  # noqa: E731


@pytest.mark.slow
def test_a_faulty_proxy_changes_nothing_but_the_waste_line(llama_server: str) -> None:
    request = GenRequest(PROMPT, SamplingParams(temperature=0.8, max_tokens=6), seeds=(1, 2, 3, 4))
    with OpenAIBackend(base_url=llama_server, concurrency=2) as clean:
        expected = [BOOKED(g) for g in clean.generate(request)]
        assert clean.take_waste() == []
        clean_id = clean.model_id
    schedule = {1: ["500"], 2: ["drop"], 3: ["delay", "500"]}
    with FaultyProxy(llama_server, schedule) as proxy:
        with OpenAIBackend(base_url=proxy.base_url, concurrency=2, timeout=4.0, max_retries=3, backoff=0.01) as b:
            assert b.model_id == clean_id  # reached through a proxy, still the same model
            gens = b.generate(request)
            waste = b.take_waste()
        proxy.settle()
    assert [BOOKED(g) for g in gens] == expected
    assert Counter(w.reason for w in waste) == Counter({"HTTP 500": 2, "dropped connection": 1, "ReadTimeout": 1})
    assert all(w.estimated and w.url == proxy.base_url + "/completions" for w in waste)
    upstream = (len(proxy.computed), sum(p for _, p, _ in proxy.computed), sum(c for _, _, c in proxy.computed))
    useful, wasted = totals(gens), totals(waste)
    assert useful == totals_of_clean(expected)
    assert tuple(u + w for u, w in zip(useful, wasted, strict=True)) == upstream  # requests, prompt, completion


def totals_of_clean(booked: list[tuple[Any, ...]]) -> tuple[int, int, int]:
    return len(booked), sum(b[2] for b in booked), sum(b[3] for b in booked)


@pytest.mark.slow
def test_a_request_the_proxy_always_fails_is_still_on_the_books(llama_server: str) -> None:
    request = GenRequest(PROMPT, SamplingParams(temperature=0.8, max_tokens=6), seeds=(1, 2, 3))
    delivered: dict[int, Generation] = {}
    with FaultyProxy(llama_server, {2: ["500", "500"]}) as proxy:
        with OpenAIBackend(base_url=proxy.base_url, concurrency=3, timeout=30, max_retries=1, backoff=0.01) as b:
            with pytest.raises(BackendError, match="HTTP 500"):
                b.generate(request, on_sample=delivered.__setitem__)
            waste = b.take_waste()
        proxy.settle()
    useful = totals(list(delivered.values()))
    beyond = [(s, p, c) for s, p, c in proxy.computed]
    for g in delivered.values():
        beyond.remove((g.seed, g.prompt_tokens, g.completion_tokens))
    assert len(waste) == len(beyond) >= 2  # every request the server computed is on the books
    if delivered:  # the prompt's size is known from a sibling; completions of failed requests are not
        assert sum(w.prompt_tokens for w in waste) == sum(p for _, p, _ in beyond)
    assert all(w.completion_tokens == 0 and "unknown" in w.reason for w in waste)
    assert useful[0] == len(delivered)


def sweep_config(base_url: str, **backend: Any) -> Any:
    from oomlab.sweep import SweepConfig

    return SweepConfig(task="arithmetic", strategies=["majority"], n=4, problems=2, seed=0, backend="openai",
                       backend_options={"base_url": base_url, "concurrency": 2, **backend})


@pytest.mark.slow
def test_a_sweep_through_a_faulty_proxy_books_what_the_server_did(llama_server: str, tmp_path: Any) -> None:
    """The Store's books: useful work equals a clean run's exactly; the waste line is the rest of upstream."""
    from oomlab.store import Store
    from oomlab.strategies.base import draw_seeds
    from oomlab.sweep import Sweep

    clean_store = Store(tmp_path / "clean.db")
    clean = Sweep(sweep_config(llama_server), clean_store).run()
    seeds = draw_seeds(0, 4)
    schedule = {seeds[0]: ["500"], seeds[1]: ["drop"], seeds[2]: ["delay", "500"]}
    with FaultyProxy(llama_server, schedule) as proxy:
        store = Store(tmp_path / "faulty.db")
        cfg = sweep_config(proxy.base_url, timeout=4.0, max_retries=3, backoff=0.01)
        result = Sweep(cfg, store).run()
        proxy.settle()
    useful, expected = store.run_totals(result.run_id), clean_store.run_totals(clean.run_id)
    assert (useful.samples, useful.prompt_tokens, useful.completion_tokens) == (
        expected.samples, expected.prompt_tokens, expected.completion_tokens)
    assert useful.seconds > 0 and useful.wait_seconds > 0, "the timed-out try is a wait, not device time"
    waste = store.waste(result.run_id)
    upstream_prompt = sum(p for _, p, _ in proxy.computed)
    upstream_completion = sum(c for _, _, c in proxy.computed)
    billed_prompt = sum(r.generation.prompt_tokens for r in store.samples(
        sorted({i for a in store.attempts(result.run_id) for i in a.sample_ids})).values())
    assert useful.samples + waste.requests == len(proxy.computed)
    assert billed_prompt + waste.prompt_tokens == upstream_prompt
    assert useful.completion_tokens + waste.completion_tokens == upstream_completion
    assert waste.estimated and waste.reasons == {"HTTP 500": 2, "dropped connection": 1, "ReadTimeout": 1}
    info = store.run(result.run_id)
    assert info.energy_method.startswith("unknown"), "a remote server's energy is not this CPU's"
    assert useful.joules != useful.joules  # NaN: unknown, never a local TDP estimate


@pytest.mark.slow
def test_sigkill_mid_request_keeps_what_the_server_returned(llama_server: str, tmp_path: Any) -> None:
    """Killed with requests in flight: every answer the server had sent (a moment earlier) is in the database."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys

    db = tmp_path / "killed.db"
    with FaultyProxy(llama_server, {}) as proxy:
        cmd = [sys.executable, "-c", "from oomlab.cli import main; main()", "sweep", "--backend", "openai",
               "--base-url", proxy.base_url, "-B", "concurrency=4", "-s", "majority", "--n", "8", "--problems", "6",
               "--db", str(db), "--json"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 120
        while len(proxy.delivered) < 6:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the sweep never got six answers"
            time.sleep(0.02)
        time.sleep(0.5)  # let the client take the answers sent so far
        killed_at = time.monotonic()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proxy.settle()
    settled = [(seed, prompt) for seed, prompt, when in proxy.delivered if when < killed_at - 0.5]
    rows = set(sqlite3.connect(db).execute("SELECT seed, prompt FROM samples").fetchall())
    assert len(settled) >= 6 and set(settled) <= rows
    assert len(rows) < 6 * 8, "killed mid-sweep"

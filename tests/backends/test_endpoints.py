"""One openai backend over many endpoints: least-loaded first, a bound each, one model, dead ones set aside.

The servers are real HTTP servers on 127.0.0.1: toy OpenAI-compatible servers of this file's own
(in this process, or each in its own OS process so it can be SIGKILLed), and, in the slow test,
four llama-cpp-python servers serving the embedded model. Run as a script, this file is one toy
server: `python test_endpoints.py MODEL LATENCY` prints its base URL and serves until killed.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from oomlab.backends import GenRequest, SamplingParams
from oomlab.backends.endpoints import parse_base_urls
from oomlab.backends.openai import OpenAIBackend
from oomlab.errors import BackendError, ConfigError
from oomlab.store import Store
from oomlab.sweep import Sweep, SweepConfig

PROMPT = "The capital of France is"


def toy_text(prompt: str, seed: int) -> str:
    """What every toy server answers for (prompt, seed): the same on each, like one model's weights."""
    return f" {zlib.crc32(f'{prompt}|{seed}'.encode()) % 1000}"


class ToyServer:
    """An OpenAI-compatible server: /models lists `model`; /completions answers `toy_text` after `latency`.

    `fail(hit_number)` may turn a POST into a 500; `hang(hit_number)` holds it unanswered until the
    server closes. It records every payload and the peak in flight; GET /stats reports them (for a
    server in another process).
    """

    def __init__(self, model: str = "toy", latency: float = 0.0, fail: Callable[[int], bool] | None = None,
                 hang: Callable[[int], bool] | None = None):
        self.model, self.latency, self.fail, self.hang = model, latency, fail, hang
        self.closing = threading.Event()
        self.hits: list[dict[str, Any]] = []
        self.in_flight = self.peak = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

            def do_GET(self) -> None:
                if self.path.endswith("/stats"):
                    with owner.lock:
                        self.answer(200, {"hits": owner.hits, "peak": owner.peak})
                else:
                    self.answer(200, {"object": "list", "data": [{"id": owner.model, "object": "model"}]})

            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner.lock:
                    owner.hits.append(payload)
                    number = len(owner.hits)
                    owner.in_flight += 1
                    owner.peak = max(owner.peak, owner.in_flight)
                time.sleep(owner.latency)
                if owner.hang is not None and owner.hang(number):
                    owner.closing.wait(60)
                with owner.lock:
                    owner.in_flight -= 1
                if owner.fail is not None and owner.fail(number):
                    self.answer(500, {"error": "injected"})
                    return
                text = toy_text(payload["prompt"], payload["seed"])
                self.answer(200, {"choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                                  "usage": {"prompt_tokens": 6, "completion_tokens": 1, "total_tokens": 7}})

            def answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
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
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class ToyProcess:
    """A ToyServer in an OS process of its own (this file run as a script), so it can die by SIGKILL."""

    def __init__(self, model: str = "toy", latency: float = 0.0):
        self.proc = subprocess.Popen([sys.executable, __file__, model, str(latency)], stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().decode().strip()
        assert self.base_url.startswith("http://127.0.0.1:"), f"the toy server did not start: {self.base_url!r}"

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.base_url}/stats", timeout=5).json()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()


@pytest.fixture
def toys() -> Iterator[Callable[..., ToyServer]]:
    made: list[ToyServer] = []

    def make(**kw: Any) -> ToyServer:
        made.append(ToyServer(**kw))
        return made[-1]

    yield make
    for s in made:
        s.close()


@pytest.fixture
def toy_processes() -> Iterator[Callable[..., list[ToyProcess]]]:
    made: list[ToyProcess] = []

    def make(n: int, **kw: Any) -> list[ToyProcess]:
        made.extend(ToyProcess(**kw) for _ in range(n))
        return made[-n:]

    yield make
    for p in made:
        p.close()


def closed_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (a connect is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def backend(urls: str | list[str], **kw: Any) -> OpenAIBackend:
    kw.setdefault("backoff", 0.01)
    return OpenAIBackend(base_url=urls, **kw)


def req(n: int, prompt: str = PROMPT) -> GenRequest:
    return GenRequest(prompt, SamplingParams(max_tokens=8), seeds=tuple(range(1, n + 1)))


def kill_when_busy(b: OpenAIBackend, url: str, kill: Callable[[], None], answered: int = 1, limit: float = 60.0) -> threading.Thread:
    """Kill the server at `url` once it has answered `answered` tries and has one in flight (a thread)."""

    def watch() -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            st = next(s for s in b.endpoint_stats() if s["url"] == url)
            if st["answered"] >= answered and st["in_flight"] >= 1:
                kill()
                return
            time.sleep(0.002)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


# -- which URLs ---------------------------------------------------------------------------------
def test_base_url_is_one_a_list_or_a_file(tmp_path: Path) -> None:
    assert parse_base_urls("http://a:8000/v1/") == ["http://a:8000/v1"]
    assert parse_base_urls(["http://a/v1", "http://b/v1"]) == ["http://a/v1", "http://b/v1"]
    f = tmp_path / "endpoints.txt"
    f.write_text("# eight vLLM ranks\nhttp://n1:8000/v1\n\n  http://n2:8000/v1  # rank 1\n")
    assert parse_base_urls(f"@{f}") == ["http://n1:8000/v1", "http://n2:8000/v1"]
    assert parse_base_urls(["http://n0:8000/v1", f"@{f}"]) == ["http://n0:8000/v1", "http://n1:8000/v1", "http://n2:8000/v1"]
    with pytest.raises(ConfigError, match="given twice"):
        parse_base_urls(["http://a/v1", "http://a/v1/"])
    with pytest.raises(ConfigError, match="not an http:// or https:// URL"):
        parse_base_urls("localhost:8000/v1")
    with pytest.raises(ConfigError, match="cannot read the endpoint file"):
        parse_base_urls(f"@{tmp_path / 'missing.txt'}")
    (tmp_path / "empty.txt").write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="lists no URLs"):
        parse_base_urls(f"@{tmp_path / 'empty.txt'}")
    with pytest.raises(ConfigError, match="no endpoint given"):
        parse_base_urls([])


# -- spreading the load ---------------------------------------------------------------------------
def test_requests_go_least_loaded_first_with_a_bound_per_endpoint(toys: Callable[..., ToyServer]) -> None:
    servers = [toys(latency=0.15) for _ in range(4)]
    with backend([s.base_url for s in servers], concurrency=2) as b:
        assert b.concurrency == 8 and b.endpoint_concurrency == 2
        assert b.endpoints == [s.base_url for s in servers]
        results: dict[int, list[Any]] = {}
        threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, b.generate(req(6, f"{PROMPT} {i}"))))
                   for i in range(4)]  # the sweep calls generate from many threads at once
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert b.peak_in_flight == 8 and b.in_flight == 0
        assert b.dead_endpoints == []
    for i, gens in results.items():
        assert [g.text for g in gens] == [toy_text(f"{PROMPT} {i}", s) for s in range(1, 7)]
    assert [s.peak for s in servers] == [2] * 4  # each one full, none over its bound
    assert sum(len(s.hits) for s in servers) == 24 and min(len(s.hits) for s in servers) >= 2  # all took a share


def test_a_request_is_the_same_whichever_endpoint_serves_it(toys: Callable[..., ToyServer]) -> None:
    servers = [toys(latency=0.05) for _ in range(3)]
    with backend([s.base_url for s in servers], concurrency=1) as b:
        gens = b.generate(req(9))
    assert [g.text for g in gens] == [toy_text(PROMPT, s) for s in range(1, 10)]
    assert all(s.hits for s in servers)
    without_seed = {json.dumps({k: v for k, v in h.items() if k != "seed"}, sort_keys=True) for s in servers for h in s.hits}
    assert len(without_seed) == 1  # one payload, but for the seed, on every endpoint
    assert sorted(h["seed"] for s in servers for h in s.hits) == list(range(1, 10))


def test_a_prompt_stays_on_its_endpoint_while_it_is_not_much_busier(toys: Callable[..., ToyServer]) -> None:
    """Its prefix is cached there: one request after another for one prompt go to one server, not round."""
    servers = [toys() for _ in range(3)]
    urls = [s.base_url for s in servers]
    with backend(urls, concurrency=8) as b:
        for _ in range(6):
            b.generate(req(1))
    assert sorted(len(s.hits) for s in servers) == [0, 0, 6]
    with backend(urls, concurrency=8, prefix_affinity=False) as b:
        for _ in range(6):
            b.generate(req(1, prompt="another prompt"))
    assert [len([h for h in s.hits if h["prompt"] == "another prompt"]) for s in servers] == [2, 2, 2]  # ties rotate


# -- one model ---------------------------------------------------------------------------------
def test_every_endpoint_must_serve_the_same_model(toys: Callable[..., ToyServer]) -> None:
    same = [toys(model="gemma-270m") for _ in range(3)]
    odd = toys(model="llama-8b")
    urls = [same[0].base_url, odd.base_url, same[1].base_url, same[2].base_url]
    with pytest.raises(ConfigError) as e:
        backend(urls)
    assert str(e.value).startswith(f"endpoint {odd.base_url} serves 'llama-8b' while 3 others serve 'gemma-270m'")
    assert "model_identity" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=f"endpoint {odd.base_url} does not serve 'gemma-270m' \\(it serves 'llama-8b'\\)"):
        backend(urls, model="gemma-270m")
    # the user says they are one model: each endpoint is sent the name it serves
    with backend(urls, model_identity="gemma-3-270m", concurrency=1) as b:
        assert b.model_id == "openai:gemma-3-270m"
        b.generate(req(8))
    assert odd.hits and all(h["model"] == "llama-8b" for h in odd.hits)
    assert all(h["model"] == "gemma-270m" for s in same for h in s.hits)


def test_an_endpoint_down_at_start_is_refused(toys: Callable[..., ToyServer]) -> None:
    up, down = toys(), closed_url()
    with pytest.raises(BackendError, match=f"startup probe failed: cannot reach {down}/models .*server at {down}\\?"):
        backend([up.base_url, down], probe_timeout=2.0)


# -- dead endpoints ------------------------------------------------------------------------------
def test_an_endpoint_killed_mid_request_is_set_aside_and_its_work_goes_elsewhere(
    toy_processes: Callable[..., list[ToyProcess]],
) -> None:
    procs = toy_processes(4, latency=0.1)
    urls = [p.base_url for p in procs]
    lines: list[str] = []
    with backend(urls, concurrency=2, max_retries=2, on_status=lines.append) as b:
        assert b.concurrency == 8
        watcher = kill_when_busy(b, urls[2], procs[2].kill, answered=2)
        gens = b.generate(req(40))
        watcher.join()
        waste = b.take_waste()
        victim_answered = next(s["answered"] for s in b.endpoint_stats() if s["url"] == urls[2])
        assert [url for url, _ in b.dead_endpoints] == [urls[2]]
        assert b.concurrency == 6  # the dead one's bound no longer counts
        assert b.in_flight == 0
    assert [g.text for g in gens] == [toy_text(PROMPT, s) for s in range(1, 41)]  # all there, none changed
    assert any(line.startswith(f"endpoint {urls[2]} set aside after 3 failures in a row") for line in lines)
    # the tries it had in flight are waste at its URL; refused connects afterwards were never work
    assert waste and {w.url for w in waste} == {urls[2] + "/completions"}
    assert {w.reason for w in waste} <= {"dropped connection", "abandoned: endpoint set aside"}
    survivors = sum(len(p.stats()["hits"]) for i, p in enumerate(procs) if i != 2)
    assert survivors + victim_answered == 40  # the survivors drew the rest, each once


def test_a_silent_endpoint_is_set_aside_after_timeouts(toys: Callable[..., ToyServer]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel accepts connections; nobody ever answers
        silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        live = [toys(latency=0.02) for _ in range(2)]
        with backend([silent_url] + [s.base_url for s in live], model="toy", model_identity="toy", concurrency=2,
                     timeout=0.5, max_retries=1, endpoint_failures=2, status_interval=5.0) as b:
            start = time.monotonic()
            gens = b.generate(req(12))
            elapsed = time.monotonic() - start
            waste = b.take_waste()
            assert [url for url, _ in b.dead_endpoints] == [silent_url]
    assert [g.text for g in gens] == [toy_text(PROMPT, s) for s in range(1, 13)]
    assert elapsed < 0.5 * 2 + 4.0  # slack for a loaded machine; without the setting aside some requests fail
    assert waste and all(w.url == silent_url + "/completions" for w in waste)
    assert {w.reason.split(";")[0] for w in waste} <= {"ReadTimeout", "abandoned: endpoint set aside"}


def test_tries_in_flight_at_an_endpoint_set_aside_are_abandoned_at_once(toys: Callable[..., ToyServer]) -> None:
    """Two tries hang at a sick endpoint; its next three answer 500: it is set aside, and the two hung
    tries go elsewhere now, not after their 30 s timeout. They are waste, at the sick endpoint.

    The healthy ones take a second per answer, so while they are full the sick one's quick 500s are
    the only free slots, and its three failures in a row come within milliseconds of each other.
    """
    sick = toys(hang=lambda n: n <= 2, fail=lambda n: n > 2)
    live = [toys(latency=1.0) for _ in range(2)]
    with backend([sick.base_url] + [s.base_url for s in live], concurrency=3, timeout=30, max_retries=3) as b:
        start = time.monotonic()
        gens = b.generate(req(12))
        elapsed = time.monotonic() - start
        waste = b.take_waste()
        assert [url for url, _ in b.dead_endpoints] == [sick.base_url]
        assert b.dead_endpoints[0][1].startswith("HTTP 500")
    assert [g.text for g in gens] == [toy_text(PROMPT, s) for s in range(1, 13)]
    assert elapsed < 10.0  # not 30
    assert len(sick.hits) == 5
    assert Counter(w.reason for w in waste) == Counter({"abandoned: endpoint set aside": 2, "HTTP 500": 3})
    assert {w.url for w in waste} == {sick.base_url + "/completions"}


def test_a_500_now_and_then_does_not_set_an_endpoint_aside(toys: Callable[..., ToyServer]) -> None:
    flaky = toys(latency=0.01, fail=lambda n: n % 3 == 0)  # every third try fails, never three in a row
    steady = toys(latency=0.01)
    with backend([flaky.base_url, steady.base_url], concurrency=1, max_retries=3) as b:
        gens = b.generate(req(30))
        waste = b.take_waste()
        assert b.dead_endpoints == [] and b.concurrency == 2
    assert [g.text for g in gens] == [toy_text(PROMPT, s) for s in range(1, 31)]
    assert waste and all(w.reason == "HTTP 500" and w.url == flaky.base_url + "/completions" for w in waste)


def test_when_every_endpoint_dies_one_error_names_them_all() -> None:
    urls = [closed_url(), closed_url()]
    with backend(urls, model="toy", model_identity="toy", max_retries=5) as b:
        start = time.monotonic()
        with pytest.raises(BackendError) as e:
            b.generate(req(4))
        assert time.monotonic() - start < 10.0  # refused connects: no timeouts waited out
        assert sorted(url for url, _ in b.dead_endpoints) == sorted(urls)
        assert b.concurrency == 0
    message = str(e.value)
    assert message.startswith("all 2 endpoints failed and were set aside: ")
    assert all(f"{url} (ConnectError" in message for url in urls) and "\n" not in message


def test_one_endpoint_is_never_set_aside(toys: Callable[..., ToyServer]) -> None:
    """With nowhere else to go, a request's own retries decide, exactly as before there were many."""
    srv = toys(fail=lambda n: n <= 5)
    with backend(srv.base_url, model="toy", max_retries=2) as b:
        with pytest.raises(BackendError, match=r"after 3 attempts: HTTP 500"):
            b.generate(req(1))
        assert b.dead_endpoints == [] and b.concurrency == 8
        [g] = b.generate(req(1))  # tries 4..6: two more 500s, then an answer
    assert g.text == toy_text(PROMPT, 1) and len(srv.hits) == 6


# -- the real thing: four llama.cpp servers, one killed mid-sweep --------------------------------
@pytest.mark.slow
def test_four_llama_servers_one_killed_mid_sweep_match_one_server(llama_fleet: Any, tmp_path: Path) -> None:
    """Four llama-cpp-python servers (four OS processes, one model each); one is SIGKILLed mid-sweep.

    The sweep completes on the other three, the dead one is reported, and every sample (text and
    token counts per prompt and seed) equals a sweep's against one server alone. Four model servers
    rather than proxies: the samples must match across separately loaded servers, not only across
    paths to one. (On 2 cores: one thread each, a 512-token context and the arithmetic task's short
    answers keep it to about a minute.)
    """
    urls = llama_fleet.start(4, "--n_ctx", "512", "--n_threads", "1", "--n_threads_batch", "1", "--n_batch", "1",
                             "--verbose", "False")

    def config(base_url: Any) -> SweepConfig:
        return SweepConfig(task="arithmetic", strategies=["majority"], n=4, problems=4, seed=0, backend="openai",
                           backend_options={"base_url": base_url, "concurrency": 2, "max_retries": 2,
                                            "backoff": 0.05})

    def samples(store: Store, run_id: str) -> dict[tuple[str, int], tuple[str, int, int]]:
        ids = sorted({i for a in store.attempts(run_id) for i in a.sample_ids})
        rows = store.samples(ids).values()
        return {(r.prompt, r.generation.seed): (r.generation.text, r.generation.prompt_tokens,
                                                 r.generation.completion_tokens) for r in rows}

    single_store = Store(tmp_path / "one.db")
    single = Sweep(config(urls[0]), single_store)
    single_run = single.run()
    expected = samples(single_store, single_run.run_id)
    assert len(expected) == 4 * 4 and single_run.drawn == 16

    store = Store(tmp_path / "four.db")
    sweep = Sweep(config(urls), store)
    b = sweep.backend
    assert b.model_id == single.backend.model_id  # one model, whichever way it is reached
    assert b.concurrency == 8
    watcher = kill_when_busy(b, urls[2], lambda: llama_fleet.kill(2), answered=1, limit=120)
    result = sweep.run()
    watcher.join()
    assert llama_fleet.procs[2].poll() is not None, "the endpoint was never killed"

    assert [url for url, _ in b.dead_endpoints] == [urls[2]]
    got = samples(store, result.run_id)
    assert got == expected  # every (prompt, seed): the same text and token counts
    assert result.drawn == 16
    stats = {s["url"]: s for s in b.endpoint_stats()}
    assert all(stats[u]["answered"] > 0 for u in urls)  # all four served samples, the dead one too (before)
    waste_urls = {r[0] for r in sqlite3.connect(store.path).execute("SELECT url FROM waste WHERE run_id = ?",
                                                                     (result.run_id,))}
    assert waste_urls == {urls[2] + "/completions"}  # the abandoned tries are on the books, at the dead one
    reasons = {r.split(";")[0] for r in store.waste(result.run_id).reasons}
    assert reasons <= {"dropped connection", "abandoned: endpoint set aside"}
    sweep.backend.close()
    single.backend.close()


if __name__ == "__main__":  # one toy server in a process of its own: MODEL LATENCY
    server = ToyServer(model=sys.argv[1], latency=float(sys.argv[2]))
    print(server.base_url, flush=True)
    threading.Event().wait()

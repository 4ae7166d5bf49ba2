"""A latency-bound OpenAI-compatible server in its own process (oomlab.testing.LatencyServer), so the
client's CPU and the server's are measured apart."""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from collections.abc import Iterator


@contextmanager
def latency_server(latency: float) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "oomlab.testing", "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(10)

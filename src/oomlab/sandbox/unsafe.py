"""Helpers of the unsafe guard: an empty network namespace where one can be had, and removing its temp dir."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys


@functools.cache
def network_namespace_prefix() -> tuple[str, ...]:
    """`unshare` arguments that put the unsafe guard's child in an empty network namespace, or () if none work."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    candidates = [(unshare, "--net", "--")] if os.geteuid() == 0 else []
    candidates.append((unshare, "--user", "--map-root-user", "--net", "--"))
    for prefix in candidates:
        try:
            probe = subprocess.run(
                [*prefix, sys.executable, "-I", "-c", "print('ok')"], capture_output=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0 and probe.stdout.strip() == b"ok":
            return prefix
    return ()


def network_namespace_available() -> bool:
    """Whether unsafe-guard programs also run in an empty network namespace (kernel-level no network)."""
    return bool(network_namespace_prefix())


def remove_tree(path: str) -> None:
    """Delete the temp dir even if the program removed its own permissions on parts of it."""

    def make_writable_and_retry(func, p, _exc):  # noqa: ANN001
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=make_writable_and_retry)

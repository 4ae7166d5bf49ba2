"""Executors: where a sweep's backend runs — in this process (`local`) or on Ray workers (`ray`).

Either way the sweep gets one Backend and stays the only writer of the Store; an executor only
changes where the samples are drawn.
"""

from __future__ import annotations

from typing import Any

from oomlab.backends.base import Backend, create_backend
from oomlab.errors import ConfigError

EXECUTORS = ("local", "ray")


def executor_backend(executor: str, backend: str, backend_options: dict[str, Any] | None = None, *,
                     address: str | None = None, workers: int | None = None, **ray_options: Any) -> Backend:
    """The backend a sweep should be given for `--executor EXECUTOR`.

    `local`: the named backend in this process (what `Sweep` builds when given none).
    `ray`: a RayBackend whose workers each hold that backend; `address` and `workers` as in RayBackend.
    """
    options = dict(backend_options or {})
    if executor == "local":
        if address is not None or workers is not None or ray_options:
            raise ConfigError("--ray-address and --workers need --executor ray")
        return create_backend(backend, **options)
    if executor == "ray":
        from oomlab.executors.ray import RayBackend

        return RayBackend(backend, options, address=address, workers=workers, **ray_options)
    raise ConfigError(f"unknown executor '{executor}'; valid executors: {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "executor_backend"]

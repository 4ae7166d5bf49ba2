"""Backends: the engines that turn prompts into samples."""

from oomlab.backends.base import (
    BACKENDS,
    Backend,
    GenRequest,
    Generation,
    ModelFacts,
    SamplingParams,
    create_backend,
)

__all__ = ["BACKENDS", "Backend", "GenRequest", "Generation", "ModelFacts", "SamplingParams", "create_backend"]

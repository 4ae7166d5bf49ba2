"""oomlab: measure what compute buys an AI system, in orders of magnitude."""

from oomlab.backends.base import Backend, GenRequest, Generation, ModelFacts, SamplingParams
from oomlab.errors import OomlabError
from oomlab.problem import Problem
from oomlab.strategies.base import Attempt, Draw, DrawStrategy, Strategy

__version__ = "0.1.0"

__all__ = [
    "Attempt",
    "Backend",
    "Draw",
    "DrawStrategy",
    "GenRequest",
    "Generation",
    "ModelFacts",
    "OomlabError",
    "Problem",
    "SamplingParams",
    "Strategy",
    "__version__",
]

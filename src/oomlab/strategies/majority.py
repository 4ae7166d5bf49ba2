"""Self-consistency: sample n answers and return the most frequent one (Wang et al. 2022, arXiv 2203.11171)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, ClassVar

from oomlab.strategies.base import STRATEGIES, Draw, DrawStrategy


def plurality(votes: Counter, seed: int) -> str | None:
    """The most-voted answer, a tie broken uniformly with `seed` over answers in order of first appearance."""
    if not votes:
        return None
    top = max(votes.values())
    return random.Random(seed).choice([a for a, v in votes.items() if v == top])


@STRATEGIES.register("majority")
class Majority(DrawStrategy):
    description: ClassVar[str] = "self-consistency: plurality vote over n sampled answers (Wang et al. 2022)"
    knob: ClassVar[str] = "n"
    knob_help: ClassVar[str] = "number of samples that vote"

    def __init__(self, temperature: float = 0.8):
        self.temperature = temperature

    def select(self, draw: Draw, seed: int = 0) -> int | None:
        """The first sample carrying the plurality answer; samples without an answer abstain.

        A tie between top answers is broken uniformly at random with `seed` (what maj@k assumes).
        """
        winner = plurality(Counter(a for a in draw.answers if a is not None), seed)
        return None if winner is None else draw.answers.index(winner)

    def estimator(self) -> dict[str, Any]:
        return {"name": "majority"}  # maj@k: exact expected correctness of the vote on a random k-subset

    def config(self) -> dict:
        return {"name": self.name, "temperature": self.temperature}

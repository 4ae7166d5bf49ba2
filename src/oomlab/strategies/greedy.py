"""Greedy decoding: one sample at temperature 0, the baseline every other strategy is measured against."""

from __future__ import annotations

from typing import ClassVar

from oomlab.strategies.base import STRATEGIES, Draw, DrawStrategy


@STRATEGIES.register("greedy")
class Greedy(DrawStrategy):
    description: ClassVar[str] = "one sample at temperature 0 (argmax decoding): the 1x baseline"
    knob: ClassVar[str] = "n"
    knob_help: ClassVar[str] = "always 1: greedy decoding is deterministic"

    temperature = 0.0

    def budgets(self, ladder: list[int]) -> list[int]:
        return [1]

    def select(self, draw: Draw, seed: int = 0) -> int | None:
        return 0 if draw.n else None

    def estimate(self, draw: Draw, k: int) -> float:
        """The greedy sample's correctness (the mean over the draw, which is correct[0] for its one sample)."""
        if k != 1:
            raise ValueError(f"greedy runs at budget 1 only, got k={k}")
        if not draw.n:
            raise ValueError("empty draw")
        return sum(draw.correct) / draw.n

    def config(self) -> dict:
        return {"name": self.name, "temperature": self.temperature}

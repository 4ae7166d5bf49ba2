"""One sample at a temperature: the accuracy of a single stochastic draw."""

from __future__ import annotations

from typing import ClassVar

from oomlab.strategies.base import STRATEGIES, Draw, DrawStrategy


@STRATEGIES.register("sample")
class Sample(DrawStrategy):
    description: ClassVar[str] = "one sample at a temperature (default 0.8): what a single stochastic draw scores"
    knob: ClassVar[str] = "n"
    knob_help: ClassVar[str] = "always 1; the draw's N samples only sharpen the estimate"

    def __init__(self, temperature: float = 0.8):
        self.temperature = temperature

    def budgets(self, ladder: list[int]) -> list[int]:
        return [1]

    def select(self, draw: Draw, seed: int = 0) -> int | None:
        return 0 if draw.n else None

    def estimate(self, draw: Draw, k: int) -> float:
        """Mean correctness of the draw: unbiased for one sample's accuracy, with variance falling as 1/N."""
        if k != 1:
            raise ValueError(f"{self.name} runs at budget 1 only, got k={k}")
        if not draw.n:
            raise ValueError("empty draw")
        return sum(draw.correct) / draw.n

    def config(self) -> dict:
        return {"name": self.name, "temperature": self.temperature}

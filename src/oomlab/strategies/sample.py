"""One sample at a temperature: the accuracy of a single stochastic draw."""

from __future__ import annotations

from typing import Any, ClassVar

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

    def estimator(self) -> dict[str, Any]:
        return {"name": "mean"}  # the draw's mean correctness: unbiased for one sample, variance 1/N

    def config(self) -> dict:
        return {"name": self.name, "temperature": self.temperature}

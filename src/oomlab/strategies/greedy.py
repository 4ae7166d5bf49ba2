"""Greedy decoding: one sample at temperature 0, the baseline every other strategy is measured against."""

from __future__ import annotations

from typing import ClassVar

from oomlab.strategies.base import STRATEGIES
from oomlab.strategies.sample import Sample


@STRATEGIES.register("greedy")
class Greedy(Sample):
    """`sample` at temperature 0: its draw is the one argmax continuation."""

    description: ClassVar[str] = "one sample at temperature 0 (argmax decoding): the 1x baseline"
    knob_help: ClassVar[str] = "always 1: greedy decoding is deterministic"

    def __init__(self) -> None:
        super().__init__(temperature=0.0)

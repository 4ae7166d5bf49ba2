"""A draw: N samples of one problem with what the estimators need (answers, correctness, scores).

It is written into an attempt's trace once (`draw_trace`) and read back (`Draw.from_trace`) by
analysis, which needs no strategy to do so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oomlab.backends.base import Generation


@dataclass(frozen=True)
class Draw:
    """N samples of one problem with what the estimators need: answers, correctness, scores."""

    generations: tuple[Generation, ...]
    answers: tuple[str | None, ...]
    correct: tuple[bool, ...]
    scores: tuple[float, ...] | None = None

    @property
    def n(self) -> int:
        return len(self.generations)

    @classmethod
    def from_trace(cls, generations: tuple[Generation, ...], trace: dict[str, Any]) -> Draw:
        """The draw an attempt's trace recorded (`draw_trace`), with its stored samples."""
        scores = trace.get("scores")
        return cls(generations, tuple(trace["answers"]), tuple(trace["correct"]),
                   None if scores is None else tuple(scores))


def draw_trace(draw: Draw) -> dict[str, Any]:
    """A draw as an attempt's trace stores it (what `Draw.from_trace` reads back)."""
    return {"answers": list(draw.answers), "correct": list(draw.correct),
            "scores": None if draw.scores is None else list(draw.scores)}

"""The Problem: one question a Task poses, with its reference answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    id: str
    inputs: dict[str, Any]  # what the prompt template is filled with
    reference: str  # the reference answer, canonical form
    metadata: dict[str, Any] = field(default_factory=dict)  # e.g. {"difficulty": 2}

    @property
    def difficulty(self) -> Any:
        return self.metadata.get("difficulty")

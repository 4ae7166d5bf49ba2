"""The model-name grammar: `STRATEGY[-BUDGET][[OPTIONS]]:MODEL`, or a plain model name.

    majority-16:gemma-3-270m                      majority vote over 16 samples
    best-of-n-8[scorer=logprob]:gemma-3-270m      best of 8 by mean token log-probability
    revise-2[temperature=0.5]:gemma-3-270m        two critique-and-revise rounds
    gemma-3-270m                                  passed through: one sample, the request's own settings

The part before the first colon is a strategy only if it names a registered one, so model names
that contain colons themselves (`llama3:8b`) still pass through unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from oomlab.errors import ConfigError
from oomlab.sweep import parse_spec

_PREFIX = re.compile(r"^(?P<name>[a-z][a-z0-9_]*(?:-[a-z][a-z0-9_]*)*)(?:-(?P<budget>\d+))?(?:\[(?P<options>[^\]]*)\])?$")


@dataclass(frozen=True)
class ModelName:
    """A requested model name, taken apart: the base model, and the strategy to run on it (None: pass through)."""

    base: str
    strategy: str | None = None
    budget: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


def parse_model_name(name: str, strategies: set[str]) -> ModelName:
    """Split `majority-16[temperature=0.7]:gemma-3-270m`; a name whose prefix is no strategy is a plain model."""
    prefix, colon, base = name.partition(":")
    if not colon:
        return ModelName(name)
    m = _PREFIX.match(prefix.strip())
    if m is None or m["name"] not in strategies:
        return ModelName(name)
    options: dict[str, Any] = {}
    if m["options"]:
        _, options = parse_spec("x:" + m["options"])
    return ModelName(base.strip(), m["name"], int(m["budget"]) if m["budget"] else None, options)


def variant_key(strategy: str, budget: int, options: dict[str, Any]) -> str:
    """The name a served configuration is filed under in the run: `best-of-n-8[scorer=logprob]` (the grammar's prefix)."""
    opts = ",".join(f"{k}={options[k]}" for k in sorted(options))
    return f"{strategy}-{budget}" + (f"[{opts}]" if opts else "")


def check_budget(budget: Any, where: str) -> int:
    """A budget is a whole number of the strategy's knob units, at least 1."""
    if isinstance(budget, bool) or not isinstance(budget, int | float) or budget != int(budget) or budget < 1:
        raise ConfigError(f"{where} must be a whole number of at least 1, got {budget!r}")
    return int(budget)

"""Strategy records for runs written before the sweep stored them (`strategy_records` in the run).

A record is what analysis needs of a strategy: label, oracle flag, kind, estimator, sampling.
New runs carry one per strategy; for an older run it is derived here, once, from the strategy's
stored name and options — the only place a run's strategy is rebuilt after the sweep.
"""

from __future__ import annotations

from typing import Any

from oomlab.strategies.base import STRATEGIES, create_strategy


def load_estimators() -> None:
    """Import every registered strategy module, so estimators registered beside their strategies exist."""
    STRATEGIES.names()


def legacy_record(key: str, options: dict[str, Any]) -> dict[str, Any]:
    opts = dict(options)
    name = opts.pop("name", key.split(":")[0])
    try:
        return create_strategy(name, **opts).record()
    except Exception:  # a strategy no longer registered, or options it no longer takes: a re-run record
        return {"name": name, "label": name, "oracle": False, "kind": "rerun", "knob": "n", "options": options}

"""oomlab: measure what compute buys an AI system, in orders of magnitude.

The Python API the CLI stands on. Names load on first use, so `import oomlab` is cheap and any
layer can import `oomlab.errors` without pulling the whole library in:

    from oomlab import Sweep, SweepConfig, Store, load_run, run_curves
    store = Store("oomlab.db")
    result = Sweep(SweepConfig(task="arithmetic", strategies=["greedy", "majority"], n=8), store).run()
    for curve in run_curves(load_run(store, result.run_id)):
        print(curve.label, [round(r.accuracy, 3) for r in curve.rungs])
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (tests/core/test_api.py pins this list)
_API: dict[str, str] = {
    # the engine
    "Sweep": "oomlab.sweep", "SweepConfig": "oomlab.sweep", "SweepResult": "oomlab.sweep",
    "MeteredBackend": "oomlab.sweep", "AttemptRunner": "oomlab.attempts", "Caps": "oomlab.caps",
    "CapReached": "oomlab.caps",
    # the store and its records
    "Store": "oomlab.store", "load_run": "oomlab.store", "RunData": "oomlab.store", "RunInfo": "oomlab.store",
    "RunConfig": "oomlab.store", "ProblemRow": "oomlab.store", "AttemptRow": "oomlab.store",
    "SampleRow": "oomlab.store",
    # the books
    "Cost": "oomlab.ledger", "Pricing": "oomlab.ledger", "charge": "oomlab.ledger",
    # analysis and reports
    "run_curves": "oomlab.analysis.curves", "Curve": "oomlab.analysis.curves", "Rung": "oomlab.analysis.curves",
    "fit_run": "oomlab.analysis.run_fitting", "compare_runs": "oomlab.analysis.compare",
    "exchange_rate": "oomlab.analysis.exchange_rate", "render_report": "oomlab.report.html",
    # the parts and their registries
    "Backend": "oomlab.backends.base", "GenRequest": "oomlab.backends.base", "Generation": "oomlab.backends.base",
    "ModelFacts": "oomlab.backends.base", "SamplingParams": "oomlab.backends.base",
    "BACKENDS": "oomlab.backends.base", "create_backend": "oomlab.backends.base",
    "Task": "oomlab.tasks.base", "TASKS": "oomlab.tasks.base", "create_task": "oomlab.tasks.base",
    "Strategy": "oomlab.strategies.base", "DrawStrategy": "oomlab.strategies.base", "Attempt": "oomlab.strategies.base",
    "Draw": "oomlab.strategies.base", "STRATEGIES": "oomlab.strategies.base",
    "create_strategy": "oomlab.strategies.base",
    "Scorer": "oomlab.scorers.base", "SCORERS": "oomlab.scorers.base", "create_scorer": "oomlab.scorers.base",
    "Problem": "oomlab.problem", "OomlabError": "oomlab.errors",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'oomlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

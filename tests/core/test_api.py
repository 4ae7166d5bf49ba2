"""The Python API the CLI stands on: `oomlab.__all__` is pinned, and every name resolves."""

from __future__ import annotations

import subprocess
import sys

import oomlab

PINNED = {
    "Attempt", "AttemptRow", "AttemptRunner", "BACKENDS", "Backend", "CapReached", "Caps", "Cost", "Curve", "Draw",
    "DrawStrategy", "GenRequest", "Generation", "MeteredBackend", "ModelFacts", "OomlabError", "Pricing", "Problem",
    "ProblemRow", "RunConfig", "RunData", "RunInfo", "Rung", "SCORERS", "STRATEGIES", "SampleRow", "SamplingParams",
    "Scorer", "Store", "Strategy", "Sweep", "SweepConfig", "SweepResult", "TASKS", "Task", "charge", "compare_runs",
    "create_backend", "create_scorer", "create_strategy", "create_task", "exchange_rate", "fit_run", "load_run",
    "render_report", "run_curves", "__version__",
}


def test_all_is_pinned_and_every_name_resolves():
    assert set(oomlab.__all__) == PINNED
    for name in oomlab.__all__:
        assert getattr(oomlab, name) is not None, name


def test_unknown_names_raise_attribute_error():
    try:
        oomlab.NoSuchThing  # noqa: B018
    except AttributeError as e:
        assert "NoSuchThing" in str(e)
    else:
        raise AssertionError("oomlab.NoSuchThing resolved")


def test_importing_oomlab_loads_no_engine():
    """`import oomlab.errors` (what every layer does) must not pull in the sweep, torch or matplotlib."""
    code = ("import sys, oomlab, oomlab.errors; "
            "print(sorted(m for m in sys.modules if m in ('oomlab.sweep', 'torch', 'matplotlib', 'oomlab.store')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_readme_example_runs(tmp_path):
    """The docstring's example, on a scripted backend (oomlab.testing) so it needs no model."""
    from oomlab.testing import ScriptedBackend

    store = oomlab.Store(tmp_path / "api.db")
    try:
        config = oomlab.SweepConfig(task="arithmetic", strategies=["greedy", "majority"], n=4, problems=3,
                                    backend="scripted")
        result = oomlab.Sweep(config, store, backend=ScriptedBackend()).run()
        curves = oomlab.run_curves(oomlab.load_run(store, result.run_id))
        assert [c.key for c in curves] == ["greedy", "majority"]
        assert [r.k for r in curves[1].rungs] == [1, 2, 4]
        assert all(0.0 <= r.accuracy <= 1.0 for c in curves for r in c.rungs)
    finally:
        store.close()

"""A finished lab's numbers as `summary.json` beside its database, read without torch (for `oomlab ooms`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from oomlab.errors import OomlabError

# which reference unhobbling multiplier (forecast/data/multipliers.csv) a lab enhancement stands beside
REFERENCE_FOR = {"cot training vs direct training (greedy)": "chain_of_thought"}


def budget_text(flops: float) -> str:
    """3e10, 1.5e12: a training budget as short as it can be written without losing a digit."""
    mantissa, exponent = f"{flops:.3e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def lab_dir_for(db: str | Path) -> Path:
    """Checkpoints, model records and the report live beside the database: `<db stem>_lab/`."""
    db = Path(db)
    return db.parent / f"{db.stem}_lab"


def find_summary(path: str | Path) -> Path:
    """summary.json from itself, its lab directory, or the database the lab wrote."""
    p = Path(path)
    if p.is_dir():
        p = p / "summary.json"
    elif p.suffix != ".json":
        p = lab_dir_for(p) / "summary.json"
    if not p.is_file():
        raise OomlabError(f"no lab summary at {p}: run `oomlab lab run` first (or pass its --db or summary.json)")
    return p


def load_summary(path: str | Path) -> dict[str, Any]:
    p = find_summary(path)
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise OomlabError(f"{p} is not a lab summary ({e})") from None


def unhobbling_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per enhancement and training budget: its measured compute-equivalent gain.

    Rows: chain-of-thought training against direct training, and each deployable test-time strategy
    at its largest budget on the ladder's primary format; oracle rows (coverage) are left
    to the report. `reference` names the reference multiplier the row stands beside.
    """
    n = summary["ladder"]["n"]
    formats = summary["ladder"]["formats"]
    primary = summary["ladder"].get("primary") or ("cot" if "cot" in formats else formats[0])
    rows = []
    for what, gains in summary["gains"].items():
        if "@" in what and (not what.endswith(f"@{n}") or not what.startswith(f"{primary}:") or "oracle" in what):
            continue
        for g in gains:
            rows.append({"enhancement": what, "reference": REFERENCE_FOR.get(what), "train_flops": g["train_flops"],
                         "accuracy": g["accuracy"], "baseline_accuracy": g["baseline_accuracy"], "ceg": g["text"],
                         "factor": g["factor"], "lo": g["lo"], "hi": g["hi"], "status": g["status"],
                         "test_cost": g["test_cost"], "oracle": "oracle" in what})
    return rows

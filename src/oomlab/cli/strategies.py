"""`oomlab strategies`: what can spend a budget, what its budget counts, and the scorers it can use."""

from __future__ import annotations

from rich.table import Table

from oomlab.cli.app import app
from oomlab.cli.common import console, json_option, print_json


@app.command()
def strategies(as_json: bool = json_option()) -> None:
    """List every registered strategy (its budget knob and how its ladder is run) and every scorer."""
    from oomlab.scorers import SCORERS
    from oomlab.strategies import STRATEGIES, DrawStrategy

    rows = [
        {"name": name, "description": cls.description, "knob": cls.knob, "knob_help": cls.knob_help,
         "ladder": "one draw" if issubclass(cls, DrawStrategy) else "re-run per rung"}
        for name, cls in STRATEGIES.items()
    ]
    scorers = [{"name": name, "oracle": bool(cls.oracle), "description": cls.description}
               for name, cls in SCORERS.items()]
    if as_json:
        print_json({"strategies": rows, "scorers": scorers})
        return
    t = Table(title="strategies", caption="one draw: every rung estimated exactly from one draw of N samples; "
              "re-run per rung: each rung is run for real with its own budget")
    for col in ("strategy", "budget knob", "ladder", "what it does"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["name"], f"{r['knob']}: {r['knob_help']}", r["ladder"], r["description"])
    console.print(t)
    s = Table(title="scorers (best-of-n:scorer=NAME)", caption="an oracle reads the reference answer: it measures "
              "coverage (pass@k), not what a deployed system achieves")
    for col in ("scorer", "oracle", "what it does"):
        s.add_column(col, overflow="fold")
    for r in scorers:
        s.add_row(r["name"], "oracle" if r["oracle"] else "no", r["description"])
    console.print(s)

"""`oomlab trace`: export the search tree of one attempt (beam, tot, mcts) as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from oomlab.cli.app import app
from oomlab.cli.common import console, db_option, open_store, run_argument
from oomlab.errors import OomlabError
from oomlab.store import AttemptRow


def pick_attempt(attempts: list[AttemptRow], strategy: str, problem: int, budget: int | None) -> AttemptRow:
    """The attempt of `strategy` (its key, or its bare name when that is unambiguous) on problem `problem`.

    Without a budget, the largest rung the strategy ran. Errors say what the run does hold.
    """
    keys = sorted({a.strategy for a in attempts})
    if strategy not in keys:
        named = [k for k in keys if k.split(":", 1)[0] == strategy]
        if len(named) != 1:
            hint = "several match: " if named else "the run holds: "
            raise OomlabError(f"no strategy '{strategy}' in this run; {hint}{', '.join(named or keys) or '(none)'}")
        strategy = named[0]
    mine = [a for a in attempts if a.strategy == strategy and a.problem_idx == problem]
    if not mine:
        indices = sorted({a.problem_idx for a in attempts if a.strategy == strategy})
        raise OomlabError(f"strategy '{strategy}' has no attempt on problem {problem}; problems: {indices}")
    if budget is None:
        return max(mine, key=lambda a: a.budget)
    for a in mine:
        if a.budget == budget:
            return a
    raise OomlabError(f"'{strategy}' ran problem {problem} at budgets {sorted(a.budget for a in mine)}, not {budget}")


@app.command()
def trace(
    run_id: str | None = run_argument(),
    problem: int = typer.Option(..., "--problem", "-p", help="Problem index in the run (0-based)."),
    strategy: str = typer.Option(..., "--strategy", "-s", help="Strategy key as the run lists it, e.g. mcts."),
    budget: int | None = typer.Option(None, "--budget", "-b", help="Budget rung; default the largest one run."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the JSON here instead of printing it."),
    db: Path = db_option(),
) -> None:
    """Export the search tree of one attempt as JSON: every node's step text, score, visits and depth,
    and the path of the final answer (`chosen`). Trees come from the search strategies: beam, tot, mcts.

    Example:  oomlab trace latest --problem 0 --strategy mcts -o tree.json
    """
    store = open_store(db)
    try:
        run_id = store.resolve_run(run_id)  # raises for an unknown id
        attempt = pick_attempt(store.attempts(run_id), strategy, problem, budget)
    finally:
        store.close()
    tree = attempt.trace.get("tree")
    if not tree:
        raise OomlabError(f"'{attempt.strategy}' records no search tree; trees come from beam, tot and mcts")
    record = {"run_id": run_id, "strategy": attempt.strategy, "problem": attempt.problem_idx,
              "budget": attempt.budget, "answer": attempt.answer, "correct": attempt.correct,
              "tokens": attempt.trace.get("tokens"), **tree}
    text = json.dumps(record, indent=2)
    if output is None:
        print(text)
        return
    output.write_text(text + "\n")
    console.print(f"wrote {len(tree.get('nodes', []))} nodes of {attempt.strategy} on problem {problem} "
                  f"(budget {attempt.budget}) to {output}", highlight=False)

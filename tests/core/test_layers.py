"""Each layer on its floor: no module imports one on a higher floor, and top-level imports have no cycle.

The floors are docs/architecture.md's; the longest matching prefix places a module. Imports are
read from the source (every `import`, including those inside functions), so a lazy import that
climbs is caught as surely as a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import oomlab

ROOT = Path(oomlab.__file__).parent

FLOORS: dict[str, int] = {
    # 0: pure — no oomlab imports beyond this floor
    "oomlab": 0, "oomlab.errors": 0, "oomlab.registry": 0, "oomlab.problem": 0, "oomlab.estimators": 0,
    "oomlab.numbers": 0, "oomlab.calculator": 0, "oomlab.forecast.pace": 0,
    # 1: engines and the books
    "oomlab.backends": 1, "oomlab.draws": 1, "oomlab.energy": 1, "oomlab.ledger": 1, "oomlab.executors": 1, "oomlab.sandbox": 1,
    "oomlab.lab.model": 1,
    # 2: what is solved and what is kept
    "oomlab.tasks": 2, "oomlab.scorers": 2, "oomlab.store": 2, "oomlab.lab.problems": 2, "oomlab.lab.data": 2,
    "oomlab.lab.train": 2, "oomlab.backends.torch": 2,
    # 3: strategies
    "oomlab.strategies": 3,
    # 4: the engine: attempts, caps, compute ladders, the sweep
    "oomlab.attempts": 4, "oomlab.caps": 4, "oomlab.compute_ladder": 4, "oomlab.sweep": 4,
    # 5: analysis of stored runs, and the forecasts
    "oomlab.analysis": 5, "oomlab.forecast": 5,
    # 6: reports and the lab that drives the engine
    "oomlab.report": 6, "oomlab.lab": 6,
    # 7: front ends
    "oomlab.serve": 7, "oomlab.cli": 7, "oomlab.testing": 7, "oomlab.__main__": 7,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def floor(module: str) -> int:
    best = max((p for p in FLOORS if module == p or module.startswith(p + ".")), key=len)
    return FLOORS[best]


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    out = set()
    for node in nodes:
        if isinstance(node, ast.If) and top_level_only:
            continue  # `if TYPE_CHECKING:` blocks
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("oomlab"):
            # `from oomlab.cli import common` imports the module oomlab.cli.common
            subs = {f"{node.module}.{a.name}" for a in node.names} & MODULES
            out.update(subs or {node.module})
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("oomlab"))
    return out


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


MODULES = set(modules())


def test_no_module_imports_a_higher_floor():
    upward = []
    for name, path in sorted(modules().items()):
        for target in sorted(imports(path)):
            if floor(target) > floor(name):
                upward.append(f"{name} (floor {floor(name)}) imports {target} (floor {floor(target)})")
    assert upward == []


def test_analysis_reads_records_and_never_plots():
    """Analysis never rebuilds strategy objects (the one legacy path is strategies.records) nor draws."""
    for name, path in modules().items():
        if not name.startswith("oomlab.analysis"):
            continue
        found = imports(path)
        assert not any(t.startswith("oomlab.strategies") and t != "oomlab.strategies.records" for t in found), name
        assert "matplotlib" not in path.read_text(), name


def test_top_level_imports_have_no_cycle():
    graph = {name: {t for t in imports(path, top_level_only=True) if t in modules()}
             for name, path in modules().items()}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle.extend(stack[stack.index(nxt):] + [node, nxt] if nxt in stack else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, stack + [node]):
                return True
        state[node] = 2
        return False

    for name in sorted(graph):
        if state.get(name) is None and visit(name, []):
            break
    assert cycle == []

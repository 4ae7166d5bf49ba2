"""Analysis stays on its floor: no plotting, no report, no CLI; the number formatter imports nothing of oomlab;
the CLI, analysis and report import no other module's underscore names."""

from __future__ import annotations

import ast
from pathlib import Path

import oomlab

SRC = Path(oomlab.__file__).parent


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every import in the file, relative imports resolved against its package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(("oomlab", *path.relative_to(SRC).parent.parts))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            out.append((module, [a.name for a in node.names]))
    return out


def test_analysis_neither_plots_nor_climbs() -> None:
    for path in sorted((SRC / "analysis").glob("*.py")):
        for module, _ in imports(path):
            top = module.split(".")
            assert top[0] != "matplotlib", f"{path.name} imports {module}: plots live in oomlab.report"
            assert top[:2] not in (["oomlab", "report"], ["oomlab", "cli"]), f"{path.name} imports {module}"


def test_the_number_formatter_is_on_the_bottom_floor() -> None:
    assert not [m for m, _ in imports(SRC / "numbers.py") if m.split(".")[0] == "oomlab"]


def test_cli_analysis_and_report_import_no_underscore_names() -> None:
    for path in sorted(p for floor in ("cli", "analysis", "report") for p in (SRC / floor).rglob("*.py")):
        for module, names in imports(path):
            if module.startswith("oomlab"):
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                assert not private, f"{path.relative_to(SRC)} imports {private} from {module}"

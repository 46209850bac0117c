"""Imports stay where a reader sees them: outside the command layer, a function-level import
is only of a module listed, with its reason, in ``cutover/lazy_imports.py``."""

from __future__ import annotations

import ast
from pathlib import Path

from cutover.lazy_imports import LAZY_IMPORTS

PACKAGE = Path(__file__).resolve().parents[2] / "cutover"


def _function_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import):
                    found += [(sub.lineno, a.name) for a in sub.names]
                elif isinstance(sub, ast.ImportFrom) and sub.level == 0 and sub.module:
                    found.append((sub.lineno, sub.module))
    return found


def test_function_level_imports_are_only_the_listed_lazy_ones() -> None:
    """Every function-level import outside cutover/cli names a module in LAZY_IMPORTS."""
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
                 for path in sorted(PACKAGE.rglob("*.py")) if "cli" not in path.parts
                 for line, name in _function_imports(path)
                 if name.split(".")[0] not in LAZY_IMPORTS]
    assert offenders == [], "\n".join(offenders)


def test_the_scan_sees_function_level_imports() -> None:
    """The probe is live: the CLI, deliberately lazy, has function-level imports it finds."""
    assert len(_function_imports(PACKAGE / "cli" / "replay.py")) >= 3

"""The main job has no test code in it: nothing under the package folders, examples/ or
benchmarks/ imports `tests` (the local stack they share lives in mlflow_steps/stack)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("mlflow_steps", "components", "generators", "pipelines", "examples", "benchmarks")


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_nothing_outside_tests_imports_tests():
    files = [p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")]
    assert any(p.name == "demo.py" for p in files)
    offenders = {
        str(p.relative_to(ROOT)): sorted(
            m for m in imported_modules(p) if m.split(".")[0] == "tests"
        )
        for p in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}

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


# The builder's rooms (issue 24 item 4, docs/layout.md "Where the code lives"): the modules sit
# in them, only the entry points stay at the top, and the tests mirror them.
BUILDER = ROOT / "components" / "builder"
BUILDER_TESTS = ROOT / "tests" / "components" / "builder"
ROOMS = ("reading", "planning", "backends", "oci", "images")
ENTRY_POINTS = {"__init__.py", "build.py", "step.py"}


def test_builder_rooms_exist():
    for room in ROOMS:
        assert (BUILDER / room / "__init__.py").is_file(), room
    assert (BUILDER / "backends" / "layered" / "__init__.py").is_file()
    assert (BUILDER / "backends" / "recipe_files" / "install-python-env.sh").is_file()


def test_no_builder_module_outside_the_rooms():
    top = {p.name for p in BUILDER.glob("*.py")}
    assert top == ENTRY_POINTS
    folders = {p.name for p in BUILDER.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(ROOMS)


def test_builder_tests_mirror_the_rooms():
    folders = {p.name for p in BUILDER_TESTS.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= set(ROOMS)
    for folder in folders:
        assert (BUILDER_TESTS / folder / "__init__.py").is_file(), folder
    # A test named after a module sits in that module's room, never at the top.
    modules = {p.stem for room in ROOMS for p in (BUILDER / room).glob("*.py")}
    modules |= {p.name for room in ROOMS for p in (BUILDER / room).iterdir() if p.is_dir()}
    modules = (modules | set(ROOMS)) - {"__init__", "__pycache__"}
    misplaced = [
        p.name
        for p in BUILDER_TESTS.glob("test_*.py")
        if any(p.stem == f"test_{m}" or p.stem.startswith(f"test_{m}_") for m in modules)
    ]
    assert misplaced == []

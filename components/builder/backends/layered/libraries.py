"""The missing-library check without running the base: every ELF file of the staged venv is
parsed (its DT_NEEDED names, RPATH and RUNPATH; the recipe's check-libraries.py parser, stdlib
only) and each needed library must be found in the venv itself (a wheel's own `*.libs` folder
from auditwheel, or another distribution's files), in an RPATH/RUNPATH folder of the staged
tree, or among the base's libraries (`base_files.BaseFacts.libraries`). Libraries the node
provides at run time (the GPU driver's) are not asked for."""

from __future__ import annotations

import importlib.util
import os
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

from ...planning.plan import recipe_file

ELF_MAGIC = b"\x7fELF"


@cache
def recipe_checker() -> ModuleType:
    """check-libraries.py, loaded as a module (its ELF parser and Debian package names)."""
    spec = importlib.util.spec_from_loader("mlflow_steps_check_libraries", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    exec(compile(recipe_file("check-libraries.py"), "check-libraries.py", "exec"), module.__dict__)
    sys.modules.setdefault(spec.name, module)
    return module


def elf_files(root: Path) -> list[Path]:
    """Every regular file under `root` that starts with the ELF magic, sorted."""
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            with path.open("rb") as handle:
                if handle.read(4) == ELF_MAGIC:
                    found.append(path)
    return sorted(found)


def missing_libraries(venv_root: Path, base_libraries: frozenset[str]) -> dict[str, list[str]]:
    """{soname: [files that need it, relative to `venv_root`]} of what nothing provides."""
    checker = recipe_checker()
    files = elf_files(venv_root)
    provided = {path.name for path in venv_root.rglob("*") if ".so" in path.name}
    missing: dict[str, list[str]] = {}
    for path in files:
        entries = checker.dynamic_entries(str(path))
        if entries is None:
            continue
        needed, folders = entries
        for library in needed:
            if (
                library in base_libraries
                or library in provided
                or "/" in library
                or checker.RUN_TIME_PROVIDED.match(library)
                or any(os.path.exists(os.path.join(folder, library)) for folder in folders)
            ):
                continue
            missing.setdefault(library, []).append(str(path.relative_to(venv_root)))
    return missing


def problems(missing: dict[str, list[str]]) -> list[str]:
    """One line per missing library: who needs it and the Debian package that provides it."""
    packages = recipe_checker().DEBIAN_PACKAGES
    lines = []
    for library, needers in sorted(missing.items()):
        more = f" and {len(needers) - 1} more" if len(needers) > 1 else ""
        package = packages.get(library)
        where = f" (Debian package {package})" if package else ""
        lines.append(f"{library}{where}, needed by {sorted(needers)[0]}{more}")
    return lines

"""Tiny distributions written by the tests themselves, for indexes whose content a test must
know exactly: a pure wheel (`wheel`) and an sdist whose in-tree build backend records the
config settings it is given (`config_sdist`)."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

from packaging.utils import canonicalize_name


def module_name(project: str) -> str:
    return canonicalize_name(project).replace("-", "_")


def wheel(directory: Path, project: str, version: str, metadata: str = "") -> Path:
    """`project`-`version`, py3-none-any, one module whose VERSION is `version`; `metadata`:
    more core-metadata header lines (each ending with a newline)."""
    directory.mkdir(parents=True, exist_ok=True)
    module = module_name(project)
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n"
        + metadata,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    path = directory / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
        archive.writestr(f"{info}/RECORD", "".join(f"{n},,\n" for n in [*files, f"{info}/RECORD"]))
    return path


# A PEP 517 backend (in the sdist, `backend-path`): its wheel's module holds SETTINGS, the
# config settings build_wheel was given.
BACKEND = """
import json, zipfile

NAME, VERSION = {name!r}, {version!r}
MODULE = {module!r}


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    info = MODULE + "-" + VERSION + ".dist-info"
    files = {{
        MODULE + "/__init__.py": "SETTINGS = " + json.dumps(config_settings or {{}}) + "\\n",
        info + "/METADATA": "Metadata-Version: 2.1\\nName: %s\\nVersion: %s\\n" % (NAME, VERSION),
        info + "/WHEEL": "Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }}
    name = MODULE + "-" + VERSION + "-py3-none-any.whl"
    with zipfile.ZipFile(wheel_directory + "/" + name, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
        archive.writestr(info + "/RECORD", "".join(n + ",,\\n" for n in [*files, info + "/RECORD"]))
    return name
"""


def config_sdist(directory: Path, project: str, version: str) -> Path:
    """`project`-`version`.tar.gz, built by its own backend (no build requirements): the
    installed module's SETTINGS is the dict of config settings the build got."""
    directory.mkdir(parents=True, exist_ok=True)
    module = module_name(project)
    top = f"{module}-{version}"
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n",
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\n'
        'backend-path = ["."]\n',
        "backend.py": BACKEND.format(name=project, version=version, module=module),
    }
    path = directory / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for member, text in files.items():
            data = text.encode()
            entry = tarfile.TarInfo(f"{top}/{member}")
            entry.size = len(data)
            archive.addfile(entry, io.BytesIO(data))
    return path

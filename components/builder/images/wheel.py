"""A wheel of the installed mlflow-steps, packed from the files Python imports it from.

Works for a regular install and for an editable one (`pip install -e .`, whose packages live
in the checkout): the wheel holds what the package-data rules install (`*.py`, the recipe
files, the step images' Dockerfiles) and the installed METADATA and entry points. The archive
is deterministic (sorted names, fixed dates), so the same package gives the same wheel.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import zipfile
from importlib import metadata
from pathlib import Path

from mlflow_steps import __version__

from ...problems import StepError

DISTRIBUTION = "mlflow-steps"
# Import name -> where it sits in the wheel; the top-level folders install under mlflow_steps.
PACKAGES = {
    "mlflow_steps": "mlflow_steps",
    "mlflow_steps.components": "mlflow_steps/components",
    "mlflow_steps.generators": "mlflow_steps/generators",
    "mlflow_steps.pipelines": "mlflow_steps/pipelines",
}
DATA_FILES = ("recipe_files/", "images/Dockerfile.")
FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def wanted(relative: str) -> bool:
    if "__pycache__" in relative or relative.startswith(("catalog/", "tests/")):
        return False
    return relative.endswith(".py") or any(part in relative for part in DATA_FILES)


def package_files() -> dict[str, Path]:
    """{name in the wheel: file}, from the folders Python imports each package from."""
    files: dict[str, Path] = {}
    for module_name, prefix in PACKAGES.items():
        module = importlib.import_module(module_name)
        for root in map(Path, module.__path__):
            for path in sorted(root.rglob("*")):
                relative = path.relative_to(root).as_posix()
                if path.is_file() and wanted(relative):
                    files.setdefault(f"{prefix}/{relative}", path)
    return files


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(directory: Path) -> Path:
    """Write mlflow_steps-<version>-py3-none-any.whl into `directory`; returns its path."""
    dist = metadata.distribution(DISTRIBUTION)
    dist_info = f"mlflow_steps-{__version__}.dist-info"
    entries: dict[str, bytes] = {name: path.read_bytes() for name, path in package_files().items()}
    # An egg-info (a setuptools develop install) names its metadata PKG-INFO.
    found = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    if not found:
        raise StepError(f"{DISTRIBUTION}: its installed metadata cannot be read; reinstall it")
    entries[f"{dist_info}/METADATA"] = found.encode()
    entries[f"{dist_info}/entry_points.txt"] = (dist.read_text("entry_points.txt") or "").encode()
    entries[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: mlflow-steps\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [record_line(name, data) for name, data in sorted(entries.items())]
    entries[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"mlflow_steps-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(entries.items()):
            info = zipfile.ZipInfo(name, FIXED_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return target

"""An installed venv, split per distribution: each one's files from its RECORD (PEP 376/627),
its whole .dist-info folder and the bytecode of its .py files; what no distribution claims is
the venv's skeleton (interpreter links, pyvenv.cfg, activate scripts, uv's _virtualenv), but
not uv's `.lock`.
"""

from __future__ import annotations

import csv
import os
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath

from packaging.utils import canonicalize_name

from ....problems import StepError


def image_files(root: Path, folder: str) -> set[str]:
    """Every file and symlink under image path `folder` (image paths)."""
    found = set()
    for here, subfolders, names in os.walk(root / folder.lstrip("/")):
        image_here = "/" + str(Path(here).relative_to(root))
        for name in names + [d for d in subfolders if os.path.islink(os.path.join(here, d))]:
            found.add(f"{image_here}/{name}")
    return found


def bytecode_of(image_path: str, cache_tag: str) -> str:
    path = PurePosixPath(image_path)
    return str(path.parent / "__pycache__" / f"{path.stem}.{cache_tag}.pyc")


def split(
    root: Path, venv: str, site: str, cache_tag: str
) -> tuple[dict[str, list[str]], list[str]]:
    """({canonical name: image paths}, skeleton image paths) of the venv at image path `venv`;
    `cache_tag` is the interpreter's (e.g. cpython-311)."""
    # uv's lock file of the venv, left by `uv pip install` only: not part of the environment
    # (with it, the skeleton of a build that installs nothing would differ from the others').
    everything = image_files(root, venv) - {f"{venv}/.lock"}
    # Each .dist-info folder's own files, in one pass (not one pass over the venv per folder).
    in_dist_info: dict[str, set[str]] = {}
    for path in everything:
        folder, _, rest = path[len(site) + 1 :].partition("/")
        if path.startswith(site + "/") and rest and folder.endswith(".dist-info"):
            in_dist_info.setdefault(folder, set()).add(path)
    claimed: dict[str, list[str]] = {}
    site_dir = root / site.lstrip("/")
    for dist_info in sorted(site_dir.glob("*.dist-info")):
        metadata = HeaderParser().parsestr((dist_info / "METADATA").read_text(errors="replace"))
        name = canonicalize_name(metadata["Name"] or dist_info.name.split("-")[0])
        files = set(in_dist_info.get(dist_info.name, ()))
        with (dist_info / "RECORD").open(newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                if not row or not row[0]:
                    continue
                image_path = os.path.normpath(os.path.join(site, row[0]))
                if not image_path.startswith(venv + "/"):
                    raise StepError(
                        f"{dist_info.name}: RECORD lists {row[0]!r}, outside the venv {venv}"
                    )
                if image_path in everything:
                    files.add(image_path)
                if image_path.endswith(".py"):
                    compiled = bytecode_of(image_path, cache_tag)
                    if compiled in everything:
                        files.add(compiled)
        claimed[name] = sorted(files)
    taken = {f for files in claimed.values() for f in files}
    return claimed, sorted(everything - taken)

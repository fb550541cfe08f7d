"""The codeset is untrusted input: the builder opens only files that resolve inside it.

The builder's pod holds the registry's push credentials, so a codeset must never make it read
(or print) anything else: every file it opens (MLproject, the environment file, each `-r`/`-c`
include, each path requirement) is checked here first, after symbolic links are followed.
A refusal names the path as written and where it leads; it never shows the file's content.
"""

from __future__ import annotations

import os
from pathlib import Path


def resolved_inside(root: Path, path: Path) -> Path | None:
    """`path` with every symlink followed, or None when that leaves `root` (itself resolved)."""
    real_root = root.resolve()
    real = path.resolve()
    return real if real == real_root or real.is_relative_to(real_root) else None


ADVICE = (
    "the builder reads only files inside the codeset folder: copy what is needed into it "
    "and name it by a path relative to the codeset"
)


def outside(root: Path, path: Path, written: str) -> str | None:
    """None when `path` stays inside `root`; else why not, after `written` (the path as the
    codeset wrote it): "is an absolute path", "leads to X", "is ... a symbolic link to X"."""
    if resolved_inside(root, path) is not None:
        return None
    lexical = Path(os.path.normpath(path.absolute()))
    if Path(written).is_absolute():
        return "is an absolute path"
    if lexical.is_relative_to(os.path.normpath(root.absolute())):
        return f"is (or passes through) a symbolic link to {path.resolve()}"
    return f"leads to {lexical}"


def refusal(written: str, why: str) -> str:
    """The whole message for a file of the codeset that leaves it."""
    return f"{written} {why}, outside the codeset; {ADVICE}"

"""Skip with a reason on a laptop; fail in CI (CI sets CI=true), so nothing skips silently."""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    if condition:
        return
    if in_ci():
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def require_tools(*names: str) -> None:
    missing = [n for n in names if not shutil.which(n)]
    require(not missing, f"needs {', '.join(missing)} on PATH (apt-get install them)")


def require_root() -> None:
    require(os.geteuid() == 0, "needs root (buildah with chroot isolation)")

"""Run the builder's CLI the way a step runs it (a subprocess), against the test services."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.images import BUILDAH_ENV


def build_with_cli(codeset: Path, registry, index, base: str, out: Path, *extra: str):
    argv = [
        sys.executable,
        "-m",
        "mlflow_steps",
        "build",
        str(codeset),
        "--registry",
        registry.host,
        "--pull-registry",
        "",
        "--repository",
        "e2e/trainer",
        "--insecure",
        "--engine",
        "buildah",
        "--base-image",
        base,
        "--pip-index-url",
        index.extra["url"],
        "--output",
        str(out),
        "--digest-output",
        str(out) + ".digest",
        *extra,
    ]
    return subprocess.run(argv, capture_output=True, text=True, env=BUILDAH_ENV)

"""What crosses into the runtime: MLflow's, AWS's and FuseML's variables, through a 0600 JSON
file in a mounted folder, never on a command line."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

PASSED_PREFIXES = ("MLFLOW_", "AWS_", "FUSEML_")


def passed_environment(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k.startswith(PASSED_PREFIXES)}


def write_env_file(directory: Path, values: Mapping[str, str]) -> Path:
    path = directory / "env.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(dict(values), handle)
    return path

"""Step outputs: written only on success, atomically, to every place the caller asked for."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def output_paths(explicit: str | None, result_env: str = "TASK_RESULT") -> list[Path]:
    """`--output FILE`, and `/tekton/results/$TASK_RESULT` when FuseML/Tekton sets it."""
    paths = [Path(explicit)] if explicit else []
    result = os.environ.get(result_env)
    if result:
        paths.append(Path("/tekton/results") / result)
    return paths


def publish(value: str, paths: list[Path]) -> None:
    for path in paths:
        write_atomically(path, value)

"""`mlflow-steps generate`: write every engine's files for both steps under one folder."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlflow_steps import __version__

# Engines are imported when used: Hera and kfp take a second to import, and the CLI's `build`
# (every builder step) must not pay for them.
ENGINES = ("tekton", "argo", "fuseml", "kfp")


@dataclass(frozen=True)
class GenerateOptions:
    version: str = ".".join(__version__.split(".")[:2])
    builder_image: str = ""
    build_engine: str = "none"


def dump(value: Any) -> str:
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, sort_keys=False, width=100)


def tekton_files(o: GenerateOptions) -> dict[str, Any]:
    from . import tekton

    return tekton.files(tekton.TektonOptions(o.build_engine, o.builder_image, o.version))


def argo_files(o: GenerateOptions) -> dict[str, Any]:
    from . import argo

    return argo.files(o.builder_image, o.build_engine)


def fuseml_files(o: GenerateOptions) -> dict[str, Any]:
    from . import fuseml

    return fuseml.files(o.builder_image, o.build_engine)


def kfp_files(o: GenerateOptions) -> dict[str, Any]:
    from kfp import compiler

    from mlflow_steps.pipelines.kfp import make_pipeline

    from . import kfp

    out: dict[str, Any] = {
        f"components/{name}.yaml": text
        for name, text in kfp.component_texts(o.builder_image, o.build_engine).items()
    }
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(make_pipeline(o.builder_image, o.build_engine), str(target))
        out["mlflow-build-and-train.yaml"] = target.read_text()
    return out


GENERATORS: dict[str, Callable[[GenerateOptions], dict[str, Any]]] = {
    "tekton": tekton_files,
    "argo": argo_files,
    "fuseml": fuseml_files,
    "kfp": kfp_files,
}


def generate(engines: list[str], out: Path, options: GenerateOptions) -> list[Path]:
    """Write each engine's files under `out/<engine>/`; returns their paths. Every file is made
    before the first is written, so a failure (such as ImportError for Hera or kfp) writes
    nothing."""
    files = {
        out / engine / relative: dump(value)
        for engine in engines
        for relative, value in sorted(GENERATORS[engine](options).items())
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)

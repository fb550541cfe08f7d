"""The builder's resolved inputs, as one typed object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..step import DEFAULT_PYTHON_VERSION
from .indexes import IndexSettings, index_settings

DEFAULT_MINICONDA_VERSION = "4.10.3"


@dataclass(frozen=True)
class BuildOptions:
    registry: str = "registry.fuseml-registry"
    pull_registry: str = "127.0.0.1:30500"
    repository: str = "mlflow/trainer"
    miniconda_version: str = DEFAULT_MINICONDA_VERSION
    base_image: str = ""
    python_version: str = DEFAULT_PYTHON_VERSION
    env_manager: str = "conda"
    system_packages: str = ""
    verbose: bool = False
    compressed_caching: bool = False
    engine: str = "auto"
    insecure: bool = False
    pip_index_url: str = ""
    pip_extra_index_url: str = ""
    pip_trusted_host: str = ""
    mlflow_requirement: str = "mlflow-skinny"
    compile_bytecode: bool = True
    layering: str = "per-package"
    resolve: bool = False
    platforms: str = ""
    context: str = "."

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> BuildOptions:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def index(self, environ: Mapping[str, str] = os.environ) -> IndexSettings:
        """The pip_* inputs split into URLs (seen by the tag) and credentials (the install
        step's only): see `indexes.py`."""
        return index_settings(
            self.pip_index_url, self.pip_extra_index_url, self.pip_trusted_host, environ
        )

    def push_reference(self, tag: str) -> str:
        return f"{self.registry}/{self.repository}:{tag}"

    def pull_reference(self, tag: str) -> str:
        return f"{self.pull_registry or self.registry}/{self.repository}:{tag}"

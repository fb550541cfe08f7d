"""The builder's resolved inputs, as one typed object."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .step import DEFAULT_PYTHON_VERSION

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
    context: str = "."

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> BuildOptions:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def build_args(self) -> dict[str, str]:
        """Build arguments: index settings reach the install step, never the final image."""
        return index_build_args(self.pip_index_url, self.pip_extra_index_url, self.pip_trusted_host)

    def push_reference(self, tag: str) -> str:
        return f"{self.registry}/{self.repository}:{tag}"

    def pull_reference(self, tag: str) -> str:
        return f"{self.pull_registry or self.registry}/{self.repository}:{tag}"


def index_build_args(index_url: str, extra_index_url: str, trusted_host: str) -> dict[str, str]:
    """The package index settings as build arguments (PIP_*), the empty ones left out."""
    args = {
        "PIP_INDEX_URL": index_url,
        "PIP_EXTRA_INDEX_URL": extra_index_url,
        "PIP_TRUSTED_HOST": trusted_host,
    }
    return {k: v for k, v in args.items() if v}

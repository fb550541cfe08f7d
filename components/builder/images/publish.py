"""`mlflow-steps images`: build the builder step's images from the installed package and push
them to the user's registry, pinned by digest.

Each variant's build context is its Dockerfile (package data next to this module) and a
wheel of the installed mlflow-steps (`wheel.py`); the package index settings (credentials
included) reach pip as the build secret `mlflow-steps-index`, never as build arguments, so the
build works behind a mirror or in an air-gapped cluster whose index holds mlflow-steps'
dependencies, and no token is left in the images' history. The images are built by the same
engine code as environment images (`engines.py`: buildah commits straight to the registry),
reproducibly (fixed timestamps), and their digests are read from the registry. Nothing is
written to `--output` unless every image was pushed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mlflow_steps import __version__

from ...problems import StepError
from ...runtime.outputs import write_atomically
from ..backends import engines
from ..build import run_job
from ..oci.registry import RegistryClient
from ..planning.indexes import IndexSettings, index_settings, secret_files
from ..step import image_name
from .wheel import build_wheel

# `unprivileged`: the default builder (no engine, non-root, `--engine none`), image
# mlflow-builder; the others are mlflow-builder-<variant>.
VARIANTS = ("unprivileged", "buildah", "kaniko")
ENGINE_OF = {"unprivileged": "none", "buildah": "buildah", "kaniko": "kaniko"}
DEFAULT_KANIKO = "ghcr.io/osscontainertools/kaniko:v1.27.0-debug"


@dataclass(frozen=True)
class ImagesRequest:
    registry: str
    repository_prefix: str = "mlflow-steps"
    tag: str = __version__
    variants: tuple[str, ...] = VARIANTS
    base_image: str = ""
    kaniko_image: str = DEFAULT_KANIKO
    insecure: bool = False
    pip_index_url: str = ""
    pip_extra_index_url: str = ""
    pip_trusted_host: str = ""
    engine: str = "buildah"
    verbose: bool = False

    def repository(self, variant: str) -> str:
        prefix = self.repository_prefix.strip("/")
        name = image_name(ENGINE_OF[variant])
        return f"{prefix}/{name}" if prefix else name

    def reference(self, variant: str) -> str:
        return f"{self.registry}/{self.repository(variant)}:{self.tag}"

    def build_args(self, variant: str) -> dict[str, str]:
        args = {"BASE": self.base_image, "KANIKO": self.kaniko_image if variant == "kaniko" else ""}
        return {k: v for k, v in args.items() if v}

    def index(self) -> IndexSettings:
        return index_settings(self.pip_index_url, self.pip_extra_index_url, self.pip_trusted_host)


def dockerfile(variant: str) -> bytes:
    return (resources.files(__package__) / f"Dockerfile.{variant}").read_bytes()


def build_images(request: ImagesRequest, log: Callable[[str], None]) -> dict[str, str]:
    """{variant: registry/prefix/mlflow-builder[-<variant>]:<tag>@sha256:...}, every image
    pushed."""
    unknown = sorted(set(request.variants) - set(VARIANTS))
    if unknown:
        raise StepError(
            f"--variant: {', '.join(unknown)} unknown; use unprivileged, buildah, kaniko or all"
        )
    if request.engine not in ("buildah", "podman", "docker"):
        raise StepError(f"--engine {request.engine}: use buildah, podman or docker")
    client = RegistryClient(request.registry, insecure=request.insecure)
    pushed: dict[str, str] = {}
    index = request.index()
    with (
        tempfile.TemporaryDirectory(prefix="mlflow-steps-images-") as tmp,
        secret_files(index) as secrets,
    ):
        wheel = build_wheel(Path(tmp) / "wheels")
        log(f"wheel of the installed package: {wheel.name}")
        for variant in request.variants:
            context = Path(tmp) / variant
            (context / "wheels").mkdir(parents=True)
            (context / "wheels" / wheel.name).write_bytes(wheel.read_bytes())
            (context / "Dockerfile").write_bytes(dockerfile(variant))
            job = engines.BuildJob(
                dockerfile=context / "Dockerfile",
                context=context,
                destination=request.reference(variant),
                digest_file=Path(tmp) / f"{variant}.digest",
                build_args=request.build_args(variant),
                secrets=secrets,
                masked=tuple(index.secret_values()),
                insecure=request.insecure,
                verbose=request.verbose,
                timestamp=engines.source_date_epoch(),
            )
            log(f"building {job.destination}")
            run_job(job, request.engine, log)
            digest = client.manifest_digest(request.repository(variant), request.tag)
            if digest is None:
                raise StepError(
                    f"{job.destination} is not in the registry after the build; check that the "
                    "engine pushes to the registry given (--registry, --insecure, credentials)"
                )
            pushed[variant] = f"{job.destination}@{digest}"
    return pushed


def write_output(pushed: dict[str, str], path: Path) -> None:
    """One `VARIANT REFERENCE` line per image, written whole, as the steps write outputs."""
    write_atomically(str(path), "".join(f"{variant} {ref}\n" for variant, ref in pushed.items()))

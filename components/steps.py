"""The two steps' specs: the only hand-edited interface. CLI flags, FuseML env vars and every
engine's generated YAML come from here."""

from __future__ import annotations

from dataclasses import replace

from mlflow_steps import __version__

from .builder.step import BUILDER as _BUILDER
from .runtime.cli import MLFLOW_ENV
from .runtime.inputs import BOOLEAN_INPUTS, INPUTS
from .spec import Input, Output, StepSpec

IMAGE_REGISTRY = "ghcr.io/mlflow-steps"
# Where the buildah builder image keeps its store (overlay driver): generated YAML mounts an
# emptyDir there, as the Tekton catalog's buildah Task does.
BUILDAH_STORE = "/var/lib/containers"
BUILDAH_STORE_VOLUME = "varlibcontainers"


def builder_image(
    engine: str = "kaniko", registry: str = IMAGE_REGISTRY, tag: str = __version__
) -> str:
    """The project's own builder image; `tag` may be a tag or `@sha256:...` (digest pinning)."""
    separator = "" if tag.startswith("@") else ":"
    return f"{registry}/mlflow-builder-{engine}{separator}{tag}"


BUILDER = replace(
    _BUILDER,
    image=builder_image(),
    display_name="MLflow environment builder",
    output_flags={"image": "--output", "digest": "--digest-output"},
)

RUNTIME = StepSpec(
    name="mlflow-runtime",
    display_name="MLflow runtime (trainer)",
    description=(
        "Runs an MLproject entry point in the environment image built by mlflow-builder, against "
        "an MLflow tracking server and artifact store, and outputs the URL of the artifact "
        "(the model) it logged."
    ),
    inputs=tuple(
        Input(name, description, default, "boolean" if name in BOOLEAN_INPUTS else "string")
        for name, default, description in INPUTS
    ),
    outputs=(Output("model_url", "URL of the artifact at mlflow_artifact_path (the model)."),),
    command=("python", "-m", "mlflow_steps_runtime", "/project"),
    output_flags={"model_url": "--output"},
    secret_env=tuple(MLFLOW_ENV),
)

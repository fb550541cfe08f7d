"""The builder step's spec: its inputs (the seed's, plus engine/insecure/pip_*), and outputs."""

from __future__ import annotations

from ..spec import Input, Output, StepSpec

ENGINES = ("auto", "kaniko", "buildah", "podman", "docker")

BUILDER = StepSpec(
    name="mlflow-builder",
    description=(
        "Builds an MLflow codeset's Python environment into a container image tagged by a "
        "checksum of that environment; skips the build when the registry already has the tag."
    ),
    inputs=(
        Input("registry", "Registry host the builder pushes to.", "registry.fuseml-registry"),
        Input(
            "pull_registry",
            "Registry host consumers pull from; empty means `registry`.",
            "127.0.0.1:30500",
        ),
        Input("repository", "Repository name of the built image.", "mlflow/trainer"),
        Input(
            "miniconda_version",
            "Tag of continuumio/miniconda3 used for conda environments.",
            "4.10.3",
        ),
        Input(
            "base_image",
            "Base image for pip environments; empty means python:3.6.13 for requirements.txt "
            "and python:<python> for python_env.yaml.",
        ),
        Input("verbose", "Verbose logging.", "false", "boolean"),
        Input("compressed_caching", "Kaniko's --compressed-caching.", "false", "boolean"),
        Input(
            "engine",
            "Build engine; auto picks kaniko in its image, else buildah, podman, docker.",
            "auto",
            choices=ENGINES,
            cli_only=True,
        ),
        Input("insecure", "Talk to the registries over plain http.", "false", "boolean"),
        Input("pip_index_url", "Package index for installs (build argument only)."),
        Input("pip_extra_index_url", "Extra package indexes, space-separated."),
        Input("pip_trusted_host", "Hosts pip and uv trust without TLS, space-separated."),
        Input(
            "mlflow_requirement",
            "What is added when the environment lacks MLflow (requirement strings, "
            "space-separated).",
            "mlflow-skinny",
        ),
        Input(
            "compile_bytecode",
            "Compile .pyc files into the image: about 8 s more per cold build and a third "
            "larger environment, about 5 s less at every start of the example's entry point.",
            "false",
            "boolean",
        ),
    ),
    outputs=(
        Output("image", "Reference of the environment image: <pull_registry>/<repository>:<tag>."),
        Output("digest", "Digest of the image manifest (sha256:...)."),
    ),
    command=("mlflow-steps", "build", "/project"),
)

"""The builder step's whole spec: its inputs (the seed's, plus engine/insecure/pip_* and what
real codesets need), its outputs, its image and its command. Every engine's YAML, the CLI
flags, the FuseML env vars and docs/parameters.md's table come from here."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow_steps import __version__

from ..spec import Input, Output, Resources, Security, StepSpec

# `none`: no container engine; the builder writes every layer itself (HTTP only, no root).
ENGINES = ("auto", "none", "kaniko", "buildah", "podman", "docker")
ENV_MANAGERS = ("conda", "uv")
LAYERINGS = ("per-package", "single")
DEFAULT_PYTHON_VERSION = "3.11"
IMAGE_REGISTRY = "ghcr.io/mlflow-steps"


def builder_image(
    engine: str = "none", registry: str = IMAGE_REGISTRY, tag: str = __version__
) -> str:
    """The project's own builder image: `mlflow-builder` (no engine, non-root) for `none`,
    `mlflow-builder-<engine>` for the others; `tag` may be a tag or `@sha256:...` (digest
    pinning)."""
    separator = "" if tag.startswith("@") else ":"
    return f"{registry}/{image_name(engine)}{separator}{tag}"


def image_name(engine: str) -> str:
    return "mlflow-builder" if engine == "none" else f"mlflow-builder-{engine}"


@dataclass(frozen=True)
class BuilderVariant:
    """One generated builder step: the engine its image holds (passed as `--engine`), the
    image (`builder_image(engine)`), the name of the step (a Tekton Task, an Argo template, a
    KFP component: the image's name) and its container's privileges."""

    engine: str
    security: Security
    why: str

    @property
    def name(self) -> str:
        return image_name(self.engine)

    def image(self, override: str = "") -> str:
        return override or builder_image(self.engine)


# The default first: the unprivileged builder, under the `restricted` Pod Security Standard.
BUILDER_VARIANTS = (
    BuilderVariant(
        "none",
        Security(),
        "No container engine: the builder writes every layer itself and talks to registries "
        "over HTTP only; runs as a non-root user under the restricted Pod Security Standard.",
    ),
    BuilderVariant(
        "buildah",
        Security(privileged=True),
        "buildah in a privileged container (root): for codesets the unprivileged builder "
        "cannot build (sdists, system_packages, env_manager=conda).",
    ),
    BuilderVariant(
        "kaniko",
        Security(run_as_user=0),
        "Kaniko as root (runAsUser: 0): for codesets the unprivileged builder cannot build "
        "(sdists, system_packages, env_manager=conda), where privileged pods are refused.",
    ),
)


def builder_variant(engine: str) -> BuilderVariant:
    found = {v.engine: v for v in BUILDER_VARIANTS}
    if engine not in found:
        raise ValueError(f"builder variant {engine}: use one of {', '.join(found)}")
    return found[engine]


BUILDER = StepSpec(
    name="mlflow-builder",
    display_name="MLflow environment builder",
    description=(
        "Builds an MLflow codeset's Python environment into a container image tagged by a "
        "checksum of that environment; skips the build when the registry already has the tag."
    ),
    inputs=(
        Input(
            "context",
            "Folder of the codeset (its MLproject) inside the source workspace, relative to "
            "its root, as the Tekton catalog's CONTEXT and `mlflow run REPO#SUBDIRECTORY`; "
            "default: the root. Files it names may be anywhere in the workspace, never "
            "outside.",
            ".",
        ),
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
            "and python:<python> for python_env.yaml (and conda.yaml with env_manager=uv). "
            "When set, the base image's own Python is used.",
        ),
        Input(
            "python_version",
            "Python for a python_env.yaml without `python` and a conda.yaml without a `python` "
            "pin (env_manager=uv): the default base is python:<python_version>.",
            DEFAULT_PYTHON_VERSION,
        ),
        Input(
            "env_manager",
            "How a conda.yaml is built: conda (miniconda base, conda channels) or uv (a Python "
            "base; conda dependencies mapped to PyPI names, conda-only ones refused).",
            "conda",
            choices=ENV_MANAGERS,
        ),
        Input(
            "system_packages",
            "Debian packages (space-separated) installed with apt-get in the same layer as the "
            "Python environment, e.g. libgomp1.",
        ),
        Input("verbose", "Verbose logging.", "false", "boolean"),
        Input("compressed_caching", "Kaniko's --compressed-caching.", "false", "boolean"),
        Input(
            "engine",
            "Build engine; none: no container engine, the builder writes every layer itself "
            "(wheels only: no sdists, system_packages or conda); auto: none where it applies, "
            "else kaniko in its image, else buildah, podman, docker.",
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
            "Compile .pyc files (unchecked-hash, packages' test folders skipped) into the "
            "image: a few seconds more once per environment, seconds less at every run; false "
            "for the smallest image and the fastest build.",
            "true",
            "boolean",
        ),
        Input(
            "layering",
            "per-package: each installed distribution is a layer of its own, written by the "
            "builder (buildah engine), so a layer the registry already holds is mounted, not "
            "rebuilt or uploaded; single: one layer for the whole environment. per-package falls "
            "back to single, saying why, for sdists, system_packages, env_manager=conda and "
            "other engines.",
            "per-package",
            choices=LAYERINGS,
        ),
        Input(
            "resolve",
            "Resolve the requirements to exact versions and hashes (uv, against the index, for "
            "the base's Python) before tagging: the tag follows what the index offers now, the "
            "install uses exactly that resolution, and the lock is kept in the image at "
            "/opt/mlflow-env/pylock.toml.",
            "false",
            "boolean",
        ),
        Input(
            "platforms",
            "Platforms of the image, comma-separated os/architecture[/variant], e.g. "
            "linux/amd64,linux/arm64: one lock for all (uv's universal resolution), one "
            "manifest per platform read from the base's image index, pushed as an OCI image "
            "index under the tag. Empty: the base's own platform, one manifest. Wheels only; "
            "another CPU than the builder's needs engine none (auto picks it): an engine would "
            "need emulation.",
        ),
    ),
    outputs=(
        Output("image", "Reference of the environment image: <pull_registry>/<repository>:<tag>."),
        Output(
            "digest",
            "Digest of the image manifest (sha256:...); of the image index when `platforms` is "
            "set.",
        ),
        Output(
            "source",
            "The codeset's source, an input of the build: its git checkout's remote and commit "
            "when it is one, else empty.",
            fields=(
                Output("uri", "git+<remote URL> of the codeset's git checkout (no credentials)."),
                Output("digest", "Commit of the codeset's git checkout: sha1:<hex>."),
            ),
        ),
    ),
    image=builder_image(),
    command=("mlflow-steps", "build", "/project"),
    output_flags={"image": "--output", "digest": "--digest-output", "source": "--source-output"},
    resources=Resources("500m", "1Gi", "2", "4Gi"),
)

"""The two steps, side by side: each spec lives whole in its step's `step.py`. This module only
gathers them for the generators, with the constants the engines' YAML shares."""

from __future__ import annotations

from .builder.planning.indexes import NETRC_ENV
from .builder.step import (
    BUILDER,
    BUILDER_VARIANTS,
    IMAGE_REGISTRY,
    BuilderVariant,
    builder_image,
    builder_variant,
)
from .runtime.record import IMAGE_ENV
from .runtime.step import RUNTIME
from .spec import Input, StepSpec

STEPS = (BUILDER, RUNTIME)
# IMAGE_ENV (MLFLOW_STEPS_IMAGE): the runtime step's own image reference, which every engine's
# YAML sets from its image parameter; the runtime tags the run and its models with it.
# Where the buildah builder image keeps its store (overlay driver): generated YAML mounts an
# emptyDir there, as the Tekton catalog's buildah Task does.
BUILDAH_STORE = "/var/lib/containers"
BUILDAH_STORE_VOLUME = "varlibcontainers"
# The Kaniko variant runs in three containers sharing this emptyDir
# (components/builder/backends/split.py): `download` (the index Secret, the registry Secret;
# `--phase download`), `build` (no index Secret or setting, no registry Secret; `--phase
# install`, into an OCI image layout) and `push` (the registry Secret; `--phase push`), so
# Kaniko's RUNs, which are not isolated from its container, never run a codeset's build code
# beside the index or the push credentials.
DOWNLOADS = "/mlflow-steps-downloads"
DOWNLOADS_VOLUME = "mlflow-steps-downloads"
# The job (its tag) and the bill of materials, as the download container planned them, on an
# emptyDir of their own mounted into `download` and `push` only: the build container, which
# runs the codeset's code and can rewrite anything in DOWNLOADS, never chooses the tag pushed
# nor the SBOM attached.
JOB = "/mlflow-steps-job"
JOB_VOLUME = "mlflow-steps-job"
SPLIT_ENGINES = ("kaniko",)
# The engine-less builder stages the tree it installs in /dev/shm when there is room
# (components/builder/backends/layered/staging.py; on disk, unpacking the sklearn stack took
# 6.5 system CPU s against 0.5 s in memory). A container runtime gives a pod 64 MiB there, so
# the generated pods of that variant mount a memory-backed emptyDir at /dev/shm; its pages
# count against the container's memory limit, which staging reads before it chooses memory.
SHM = "/dev/shm"
SHM_VOLUME = "dshm"
IN_MEMORY_STAGING = ("none",)
# Index settings the `build` container of a split variant never gets (they may hold a token).
INDEX_INPUTS = ("pip_index_url", "pip_extra_index_url", "pip_trusted_host")


# The split variant's registry credentials, as Secrets mounted into chosen containers only (a
# Tekton workspace would be mounted into every step): a docker `config.json` key each.
# REGISTRY_SECRET (push and pull) goes to `download` and `push`, never to `build`, which runs
# the codeset's code; BASE_PULL_SECRET (optional, read-only pull credentials for a private
# base) goes to `build` only, where that code can read it.
REGISTRY_SECRET = Input(
    "registry_secret",
    "Secret whose key `config.json` (a docker config) holds the registry credentials; mounted "
    "into the download and push containers only, never the build container; optional.",
    "registry-credentials",
)
BASE_PULL_SECRET = Input(
    "base_pull_secret",
    "Secret whose key `config.json` holds read-only pull credentials for a private base image; "
    "mounted into the build container, where code from the codeset can read it; optional "
    "(without it the base is pulled anonymously).",
    "base-pull-credentials",
)
REGISTRY_CONFIG = "/mlflow-steps-registry"
BASE_PULL_CONFIG = "/mlflow-steps-base-pull"
SECRET_CONFIG_KEY = "config.json"


def phase_args(phase: str) -> list[str]:
    """The `mlflow-steps build` flags of one container of a split variant."""
    job = ["--job", JOB] if phase in ("download", "push") else []
    return ["--phase", phase, "--downloads", DOWNLOADS, *job]


# The buildah builder's storage driver: an engine input of the buildah variant only (Tekton
# param STORAGE_DRIVER, Argo parameter storage-driver), set as buildah's own STORAGE_DRIVER.
BUILDAH_STORAGE_DRIVER = Input(
    "storage_driver",
    "buildah's storage driver: overlay (on the emptyDir at /var/lib/containers), or vfs where "
    "overlay cannot mount (slower: every layer is a full copy).",
    "overlay",
    choices=("overlay", "vfs"),
)

# Package index credentials: the key INDEX_SECRET_KEY of a Kubernetes Secret holds netrc text
# (`machine HOST login USER password TOKEN`), handed to the builder as the environment
# variable NETRC_ENV (optional: without the Secret the indexes are used anonymously). Only the
# Secret's name is an engine input: no parameter ever carries a credential.
INDEX_SECRET = Input(
    "index_secret",
    f"Secret whose key `netrc` holds the package indexes' credentials as netrc text (machine "
    f"HOST login USER password TOKEN), passed to the builder as {NETRC_ENV}; optional.",
    "index-credentials",
)
INDEX_SECRET_KEY = "netrc"


def builder_inputs(build_engine: str) -> list[Input]:
    """The builder's inputs in an engine's YAML: the spec's, the index Secret's name, and the
    storage driver for the buildah variant."""
    extra = [BUILDAH_STORAGE_DRIVER] if build_engine == "buildah" else []
    if build_engine in SPLIT_ENGINES:
        extra = [REGISTRY_SECRET, BASE_PULL_SECRET]
    return [*BUILDER.engine_inputs, INDEX_SECRET, *extra]


def resource_inputs(spec: StepSpec) -> list[Input]:
    """The container's requests and limits as engine inputs (Argo parameters, KFP pipeline
    parameters), defaults from the spec; never CLI flags."""
    r = spec.resources
    return [
        Input(
            "cpu_request", "CPU the container requests (cores, or millicores: 500m).", r.cpu_request
        ),
        Input("memory_request", "Memory the container requests (Mi, Gi).", r.memory_request),
        Input("cpu_limit", "Most CPU the container may use.", r.cpu_limit),
        Input(
            "memory_limit",
            "Most memory the container may use; more is an OOM kill.",
            r.memory_limit,
        ),
    ]


# Argo: pods get no service account token (`automountServiceAccountToken: false`); Argo then
# mounts the token of this service account into its executor containers only (init, wait),
# which report output parameters through the Kubernetes API (WorkflowTaskResults).
EXECUTOR_SERVICE_ACCOUNT = Input(
    "executor_service_account",
    "Service account whose token only Argo's executor containers get (they report outputs "
    "through the Kubernetes API); the step's own container gets none. It needs the executor "
    "Role and a token Secret named <name>.service-account-token (argo/executor-rbac.yaml).",
    "mlflow-steps-executor",
)


__all__ = [
    "BASE_PULL_CONFIG",
    "BASE_PULL_SECRET",
    "BUILDAH_STORAGE_DRIVER",
    "BUILDAH_STORE",
    "BUILDAH_STORE_VOLUME",
    "BUILDER",
    "BUILDER_VARIANTS",
    "DOWNLOADS",
    "DOWNLOADS_VOLUME",
    "EXECUTOR_SERVICE_ACCOUNT",
    "IMAGE_ENV",
    "IMAGE_REGISTRY",
    "INDEX_INPUTS",
    "INDEX_SECRET",
    "INDEX_SECRET_KEY",
    "JOB",
    "JOB_VOLUME",
    "NETRC_ENV",
    "REGISTRY_CONFIG",
    "REGISTRY_SECRET",
    "RUNTIME",
    "SECRET_CONFIG_KEY",
    "SPLIT_ENGINES",
    "STEPS",
    "BuilderVariant",
    "builder_image",
    "builder_inputs",
    "builder_variant",
    "phase_args",
    "resource_inputs",
]

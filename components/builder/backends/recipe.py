"""The Dockerfile backend: an install plan rendered as a Dockerfile of small ordered steps.

Used by buildah, podman, docker and Kaniko; it reads only the `InstallPlan` (`plan.py`).
Layer order, for caching: the environment files are copied and installed first; the install
step deletes its own files, installer and caches in the same RUN (buildah commits a stage as
one layer and Kaniko runs with --single-snapshot, so nothing of them reaches the image); the
runtime step's module comes next; labels go last. The FROM line pulls the base by the digest
it was resolved to (the tag hashes that digest), and the OCI labels
org.opencontainers.image.base.name / .base.digest say which base that was. Index settings,
credentials included, reach the install step as the build secret `mlflow-steps-index` only
(RUN --mount=type=secret): no build argument, so nothing of them in the history. One stage:
with vfs storage, a second stage (FROM + COPY --from) cost 12 s of a 47 s build here. The
project's code is never copied: it is mounted at /project when the step runs.
"""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlflow_steps import __version__

from ..oci import sbom
from ..oci.registry import PinnedBase
from ..oci.sbom import SBOM_FILE, SBOM_IN_IMAGE
from ..planning.indexes import SECRET_ID
from ..planning.plan import LOCK_FILE, LOCK_IN_IMAGE, RUNTIME, STAGING, InstallPlan, find_uv
from ..planning.resolution import read_pylock
from ..reading import grammar

STAGING_DIR = "/tmp/mlflow-steps"
VENV = "/opt/mlflow-env"
RUNTIME_DIR = "/opt/mlflow-steps/mlflow_steps_runtime"


@dataclass
class Recipe:
    """What is built: the Dockerfile and the files of the build context (relative paths)."""

    base_image: str
    dockerfile: str
    files: dict[str, bytes] = field(default_factory=dict)
    needs_uv: bool = False

    def write_context(self, directory: Path) -> Path:
        """Write Dockerfile and files into `directory`; the uv binary is added when found."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "Dockerfile").write_text(self.dockerfile, encoding="utf-8")
        write_files(self.files, directory, self.needs_uv)
        return directory


def write_files(files: dict[str, bytes], directory: Path, with_uv: bool) -> None:
    """The plan's shipped files under `directory`; with `with_uv`, the uv binary beside the
    install script (`STAGING/uv`) when this machine has one."""
    for name, content in files.items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    if with_uv:
        uv = find_uv()
        if uv:
            shutil.copy2(uv, directory / STAGING / "uv")


# What `render` writes: the whole build (`BOTH`, the Dockerfile hashed into the tag), or one
# phase of a build split across two containers (the Kaniko variant, `split.py`): `DOWNLOAD`
# (FROM the base, the download phase only, its files copied out to `export_to`) and `INSTALL`
# (the same build as `BOTH` with the download RUN left out: the downloaded files come with the
# context, and no secret is mounted anywhere).
BOTH, DOWNLOAD, INSTALL = "both", "download", "install"


def render(
    plan: InstallPlan,
    base: PinnedBase | None = None,
    phase: str = BOTH,
    export_to: str = "",
    licences: Mapping[str, list[dict]] | None = None,
) -> Recipe:
    """The Dockerfile of a plan that builds (`installer` venv, conda or runtime), FROM `base`
    pinned by digest when given (image builds), else FROM the base as named (the local engine,
    which never pulls it). `phase`: BOTH, DOWNLOAD (with `export_to`, an absolute folder of
    the build's own filesystem the downloaded files are copied into) or INSTALL; ValueError
    for a docker_env plan's DOWNLOAD or INSTALL (it downloads nothing). `licences`: the lock's
    (`core_metadata.licences`), for its bill of materials."""
    if not plan.builds:
        raise ValueError(f"{plan.kind} environments are not built")
    if phase not in (BOTH, DOWNLOAD, INSTALL):
        raise ValueError(f"phase {phase!r}: use {BOTH}, {DOWNLOAD} or {INSTALL}")
    if plan.installer == "runtime":
        if phase != BOTH:
            raise ValueError("a docker_env image downloads nothing: build it in one phase")
        return render_runtime_only(plan, base)
    venv = plan.installer == "venv"
    if phase == DOWNLOAD:
        return Recipe(plan.base_image, download_only(plan, base, export_to), dict(plan.files))
    install = phases(plan)
    if phase == INSTALL:
        install[-2] = [  # the download RUN
            "# The downloaded files came with the context (a container of their own fetched "
            "them): no secret, no download here."
        ]
    steps = [
        header(plan),
        from_step(base.pinned if base else plan.base_image),
        *install,
        runtime_step(),
        lock_step(plan),
        finish_step(plan, f"{VENV}/bin:$PATH" if venv else None, base),
    ]
    files = dict(plan.files)
    if plan.lock is not None and base is not None:
        files[SBOM_FILE] = environment_sbom(plan.lock, base, licences)
    steps.insert(-1, sbom_step(files))
    return Recipe(plan.base_image, join(steps), files, needs_uv=venv)


def download_only(plan: InstallPlan, base: PinnedBase | None, export_to: str) -> str:
    """The download phase alone, its files (`wheels/`, `pkgs/`) then copied to `export_to`."""
    if not export_to.startswith("/") or any(c in export_to for c in "\n\r\0"):
        raise ValueError(f"export_to must be an absolute folder, not {export_to!r}")
    download = phases(plan)
    target = shlex.quote(export_to.rstrip("/") + "/")
    copy = (
        f"mkdir -p {target} && for folder in wheels pkgs; do "
        f'if [ -d {STAGING_DIR}/"$folder" ]; then cp -R {STAGING_DIR}/"$folder" {target}; fi; '
        "done"
    )
    steps = [
        header(plan),
        ["# The download phase alone: its files are copied out for a build without secrets."],
        from_step(base.pinned if base else plan.base_image),
        download[0],
        [*download[-2][:-1], download[-2][-1] + " \\\n && " + copy],
    ]
    return join(steps)


def environment_sbom(
    lock: bytes, base: PinnedBase, licences: Mapping[str, list[dict]] | None = None
) -> bytes:
    """The CycloneDX document of a locked plan (`sbom.cyclonedx`): the lock's distributions
    on `base`, with `licences` (by distribution name; `core_metadata.licences` reads them from
    the index before the engine runs, as the per-package builds do)."""
    dists = read_pylock(lock.decode(), "the lock")
    return sbom.cyclonedx(dists, VENV, base.name, base.digest, licences)


def sbom_step(files: dict[str, bytes]) -> list[str]:
    if SBOM_FILE not in files:
        return []
    return [
        "# Its bill of materials (CycloneDX), made from that lock.",
        f"COPY {SBOM_FILE} {SBOM_IN_IMAGE}",
    ]


def render_runtime_only(plan: InstallPlan, base: PinnedBase | None = None) -> Recipe:
    """docker_env: the codeset's image, its `python` checked for MLflow, plus the runtime step's
    module on PYTHONPATH (whatever Python the image has, venv or not)."""
    steps = [
        header(plan),
        from_step(base.pinned if base else plan.base_image),
        runtime_step(),
        [
            "# The runtime step runs `python -m mlflow_steps_runtime`: the image's python must "
            "have MLflow.",
            'RUN python -c "import mlflow" || { echo '
            + shlex.quote(
                f"mlflow-steps: the docker_env image {check_reference(plan.base_image)} needs a "
                'python command with MLflow installed (python -c "import mlflow" failed); add '
                "MLflow to the image, or use a python_env.yaml, conda.yaml or requirements.txt "
                "instead"
            )
            + " >&2; exit 1; }",
            "ENV PYTHONPATH=/opt/mlflow-steps${PYTHONPATH:+:${PYTHONPATH}}",
        ],
        finish_step(plan, None, base),
    ]
    return Recipe(plan.base_image, join(steps), dict(plan.files))


# --- Dockerfile steps -------------------------------------------------------------------------


def header(plan: InstallPlan) -> list[str]:
    return [
        f"# Generated by mlflow-steps {__version__} for a {plan.kind} environment. Do not edit.",
        "# The codeset is not in the image: it is mounted at /project when the step runs.",
    ]


def from_step(base: str, stage: str | None = None) -> list[str]:
    """`FROM base`; `base` must be an image reference (StepError otherwise): nothing else
    ever reaches the line."""
    return [f"FROM {check_reference(base)}" + (f" AS {stage}" if stage else "")]


def check_reference(image: str) -> str:
    return grammar.check_reference(image, "image")


def install_steps(plan: InstallPlan) -> list[list[str]]:
    """The download phase, then the install phase (`phases`), for a venv and a conda plan."""
    return phases(plan)


def phase_scripts(plan: InstallPlan) -> tuple[list[str], list[str]]:
    """The download and the install command of a plan (script name, then arguments)."""
    if plan.installer == "conda":
        return ["download-conda-env.sh"], ["install-conda-env.sh"]
    sets = [s.name for s in plan.requirement_sets]
    install = ["install-python-env.sh", VENV, compile_flag(plan.compile_bytecode), *sets]
    return ["download-python-env.sh", *sets], install


def phases(plan: InstallPlan) -> list[list[str]]:
    """The system packages (a RUN of their own: apt's maintainer scripts run there, with no
    secret mounted), then two RUNs. The download phase is the only one the index secret is
    mounted for: wheels, sdists as files, conda packages (download-python-env.sh,
    download-conda-env.sh; nothing downloaded runs). The install phase has no secret: it
    installs from the downloaded files only and builds what is built from source (path, VCS,
    archive requirements, sdists), so no package's code runs where a credential is.
    (RUN --network=none is not used: buildah before 1.30 refuses it.)"""
    download_script, install = phase_scripts(plan)
    download = install_step(download_script)
    system = [
        ["# System packages: no secret mounted.", "RUN " + command(script)]
        for script in system_packages_install(plan)
    ]
    return [
        download[:2],  # the environment files
        *system,
        download[2:],
        [
            "# The install phase: no secret mounted, no index; the downloaded "
            + ("packages only." if plan.installer == "conda" else "wheels only."),
            "RUN " + command(install),
        ],
    ]


def command(script: list[str]) -> str:
    """`sh STAGING_DIR/<script> <args>`, every argument shell-quoted."""
    name, *args = script
    return " ".join(["sh", f"{STAGING_DIR}/{name}", *map(shlex.quote, args)])


def install_step(*scripts: list[str]) -> list[str]:
    """One RUN for every install script (system packages, then the environment's download or
    install): one layer, and the index secret mounted for it alone."""
    commands = [command(script) for script in scripts]
    return [
        "# Environment files first: a change to the project's code never invalidates this layer.",
        f"COPY {STAGING}/ {STAGING_DIR}/",
        "# Index settings, credentials included: a build secret mounted for this RUN only.",
        f"RUN --mount=type=secret,id={SECRET_ID} " + " \\\n && ".join(commands),
    ]


def system_packages_install(plan: InstallPlan) -> list[list[str]]:
    if not plan.system_packages:
        return []
    return [["install-system-packages.sh", *plan.system_packages]]


def runtime_step() -> list[str]:
    return [
        "# The runtime step's entry point (python -m mlflow_steps_runtime).",
        f"COPY {RUNTIME}/ {RUNTIME_DIR}/",
    ]


def lock_step(plan: InstallPlan) -> list[str]:
    if plan.lock is None:
        return []
    return [
        "# The lock the environment was installed from (PEP 751).",
        f"COPY {LOCK_FILE} {LOCK_IN_IMAGE}",
    ]


def finish_step(plan: InstallPlan, path: str | None, base: PinnedBase | None = None) -> list[str]:
    lines = []
    if path:
        lines.append(f"ENV VIRTUAL_ENV={VENV} PATH={path}")
    values = {
        "io.github.mlflow-steps.version": __version__,
        "io.github.mlflow-steps.environment-kind": plan.kind,
    }
    if base:
        values["org.opencontainers.image.base.name"] = base.name
        values["org.opencontainers.image.base.digest"] = base.digest
    # JSON strings: a value can never end its quote or its line.
    labels = [f"{key}={json.dumps(value)}" for key, value in values.items()]
    lines += [
        "WORKDIR /project",
        "LABEL " + " \\\n      ".join(labels),
        'ENTRYPOINT ["python", "-m", "mlflow_steps_runtime"]',
    ]
    return lines


def compile_flag(compile_bytecode: bool) -> str:
    return "--compile-bytecode" if compile_bytecode else "--no-compile-bytecode"


def join(steps: list[list[str]]) -> str:
    return "\n".join(line for step in steps for line in step) + "\n"

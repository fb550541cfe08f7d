"""The install plan: what one codeset's environment installs, in one normalised shape.

Each environment kind (`environments.py`, one small class per kind, repo2docker's buildpack
shape) turns itself into one `InstallPlan`. Every backend reads only the plan, never the kind:

- the Dockerfile renderer (`recipe.py`), for buildah, podman, docker and Kaniko;
- the local engine's virtual environment (`components/launcher/local_env.py`);
- the per-package layered assembly.

The tag (`tag.py`) is computed from the plan. The helpers below are the building blocks the
kinds share: the base image and Python a venv environment gets, the MLflow addition, the
`system_packages` check and the shipped files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ..problems import StepError
from .options import BuildOptions

# Where shipped files go, relative to the build context: STAGING files are installed from and
# deleted in the same step; RUNTIME files are the runtime step's module, kept in the image.
STAGING = "mlflow-steps"
RUNTIME = "mlflow-steps-runtime"
DEFAULT_PIP_BASE = "python:3.6.13"
DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?")
# The runtime step's spec is read by the generators on the host; it never ships in an image.
HOST_ONLY_RUNTIME_FILES = ("step.py",)
VENV_SCRIPTS = (
    "install-python-env.sh",
    "index-settings.sh",
    "compile-bytecode.py",
    "check-libraries.py",
)
CONDA_SCRIPTS = ("install-conda-env.sh", "index-settings.sh", "check-libraries.py")


@dataclass(frozen=True)
class RequirementSet:
    """One install step of a venv plan: requirement lines in pip/uv syntax (PEP 508
    requirements, `--hash=` options, option lines such as `--index-url U`), normalised, and
    the name of the file under `STAGING/` that holds them (`requirements.txt`)."""

    name: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class InstallPlan:
    """What an environment installs, and where: plain data, read by every backend.

    - `kind`: the environment kind it came from (`pip`, `python_env`, `conda`, `docker_env`),
      for labels and messages only; a backend never branches on it.
    - `installer`: `venv` (a virtual environment at the image's `/opt/mlflow-env`, installed
      with uv, pip as fallback, set by set), `conda` (`conda env update` of the base's
      environment from `STAGING/environment.yaml`) or `none` (docker_env: nothing is built;
      `base_image` is the image to use).
    - `base_image`: the image the environment is installed on (`FROM`), as the user named it.
    - `python`: the Python version the environment is for (`3.11`, or as the file names it);
      "" when the base's own Python decides (requirements.txt, conda).
    - `requirement_sets`: the venv's install steps, in order (build tools first, then the
      dependencies with the MLflow addition); empty for `conda` and `none`.
    - `system_packages`: Debian packages installed first, with apt (`name` or `name=version`).
    - `compile_bytecode`: whether the install compiles `.pyc` files.
    - `files`: every file shipped, build-context path -> bytes: `STAGING/...` (requirement
      files, environment.yaml, the install scripts), deleted by the install step, and
      `RUNTIME/...` (the runtime step's module), kept at /opt/mlflow-steps/mlflow_steps_runtime.
    - `environment`: the environment file's normal form (`{"kind": ..., ...}`), which the tag
      hashes.
    - `notes`: choices made for the user (the Python picked, channels ignored), shown by
      `inspect` and logged by `build`.
    """

    kind: str
    installer: str
    base_image: str
    python: str = ""
    requirement_sets: tuple[RequirementSet, ...] = ()
    system_packages: tuple[str, ...] = ()
    compile_bytecode: bool = True
    files: Mapping[str, bytes] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def builds(self) -> bool:
        return self.installer != "none"


def venv_plan(
    kind: str,
    environment: Mapping[str, Any],
    base_image: str,
    python: str,
    build_dependencies: list[str],
    dependencies: list[str],
    has_mlflow: bool,
    options: BuildOptions,
    notes: list[str],
) -> InstallPlan:
    """A virtual environment on `base_image`: build tools first, then the dependencies plus
    the MLflow addition (`mlflow_requirement`) when they name no MLflow distribution."""
    sets = []
    if build_dependencies:
        sets.append(RequirementSet("build-requirements.txt", tuple(build_dependencies)))
    sets.append(
        RequirementSet(
            "requirements.txt", tuple(dependencies + mlflow_addition(has_mlflow, options))
        )
    )
    files = {f"{STAGING}/{name}": recipe_file(name) for name in VENV_SCRIPTS}
    files.update({f"{STAGING}/{s.name}": lines_file(s.lines) for s in sets})
    system = system_packages(options)
    files.update(system_packages_files(system))
    files.update(runtime_files())
    return InstallPlan(
        kind=kind,
        installer="venv",
        base_image=base_image,
        python=python,
        requirement_sets=tuple(sets),
        system_packages=tuple(system),
        compile_bytecode=options.compile_bytecode,
        files=files,
        environment=environment,
        notes=tuple(notes),
    )


def conda_plan(
    environment: Mapping[str, Any], base_image: str, environment_yaml: str, options: BuildOptions
) -> InstallPlan:
    """conda.yaml applied with conda to the base's environment (`environment_yaml`, the MLflow
    addition included)."""
    system = system_packages(options)
    files = {f"{STAGING}/{name}": recipe_file(name) for name in CONDA_SCRIPTS}
    files[f"{STAGING}/environment.yaml"] = environment_yaml.encode()
    files.update(system_packages_files(system))
    files.update(runtime_files())
    return InstallPlan(
        kind="conda",
        installer="conda",
        base_image=base_image,
        system_packages=tuple(system),
        compile_bytecode=options.compile_bytecode,
        files=files,
        environment=environment,
    )


def python_base(where: str, declared: str, options: BuildOptions) -> tuple[str, str, list[str]]:
    """(base image, Python, notes) of a venv environment whose file names Python `declared`
    ("" for none): which Python the image gets, and why when the codeset leaves it open
    (MLflow itself would use the running Python there)."""
    python = declared or options.python_version
    if options.base_image:
        if declared:
            return options.base_image, python, []
        return (
            options.base_image,
            python,
            [
                f"{where} names no Python version: the base image's own Python is used "
                f"(base_image={options.base_image})"
            ],
        )
    if declared:
        return f"python:{declared}", python, []
    return (
        f"python:{python}",
        python,
        [
            f"{where} names no Python version: using Python {python} (the python_version "
            f"input), base image python:{python}"
        ],
    )


def mlflow_addition(has_mlflow: bool, options: BuildOptions) -> list[str]:
    return [] if has_mlflow else options.mlflow_requirement.split()


def system_packages(options: BuildOptions) -> list[str]:
    """The `system_packages` input, checked: Debian package names (optionally =version)."""
    names = options.system_packages.split()
    bad = [name for name in names if not DEBIAN_PACKAGE.fullmatch(name)]
    if bad:
        raise StepError(
            f"system_packages: {', '.join(map(repr, bad))} are not Debian package names "
            "(lowercase letters, digits, + - . and an optional =version), e.g. libgomp1"
        )
    return names


def system_packages_files(names: list[str]) -> dict[str, bytes]:
    if not names:
        return {}
    name = "install-system-packages.sh"
    return {f"{STAGING}/{name}": recipe_file(name)}


def recipe_file(name: str) -> bytes:
    """One of the builder's in-container scripts (`recipe_files/`)."""
    return (resources.files(__package__) / "recipe_files" / name).read_bytes()


def runtime_files() -> dict[str, bytes]:
    """The runtime step's module, copied into every image (stdlib + MLflow only)."""
    package = resources.files("mlflow_steps.components.runtime")
    return {
        f"{RUNTIME}/{entry.name}": entry.read_bytes()
        for entry in sorted(package.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".py") and entry.name not in HOST_ONLY_RUNTIME_FILES
    }


def lines_file(lines: tuple[str, ...] | list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()

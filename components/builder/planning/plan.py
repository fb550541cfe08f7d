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
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ...problems import StepError
from ..reading import grammar
from ..reading.uv_options import uv_install
from .options import BuildOptions

# Where shipped files go, relative to the build context: STAGING files are installed from and
# deleted in the same step; RUNTIME files are the runtime step's module, kept in the image.
STAGING = "mlflow-steps"
RUNTIME = "mlflow-steps-runtime"
# A resolved or locked environment's lock (PEP 751), kept in the image as LOCK_IN_IMAGE.
LOCK_FILE = "mlflow-steps-lock/pylock.toml"
LOCK_IN_IMAGE = "/opt/mlflow-env/pylock.toml"
# The first line of a requirement set that is a lock: every line pinned with --hash (pip and
# uv both read it from a requirements file).
REQUIRE_HASHES = "--require-hashes"
MLFLOW_CONSTRAINTS = "mlflow-constraints.txt"
DEFAULT_PIP_BASE = "python:3.6.13"
DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?")
# The runtime step's spec is read by the generators on the host; it never ships in an image.
HOST_ONLY_RUNTIME_FILES = ("step.py",)
VENV_SCRIPTS = (
    "download-python-env.sh",
    "fetch-sdists.py",
    "install-python-env.sh",
    "index-settings.sh",
    "compile-bytecode.py",
    "check-libraries.py",
)
CONDA_SCRIPTS = (
    "download-conda-env.sh",
    "download-python-env.sh",
    "fetch-sdists.py",
    "install-conda-env.sh",
    "index-settings.sh",
    "check-libraries.py",
)
# The files of a conda plan's two phases (`conda_plan`), under STAGING.
CONDA_FILES = (
    "conda-channels.txt",
    "conda-specs.txt",
    "conda-variables.txt",
    "pip-requirements.txt",
)


@dataclass(frozen=True)
class RequirementSet:
    """One install step of a venv plan: requirement lines in pip/uv syntax (PEP 508
    requirements, `--hash=` options, option lines such as `--index-url U`), normalised, and
    the name of the file under `STAGING/` that holds them (`requirements.txt`)."""

    name: str
    lines: tuple[str, ...]

    @property
    def locked(self) -> bool:
        """A lock: installed in hash-checking mode, every distribution pinned with hashes."""
        return REQUIRE_HASHES in self.lines


@dataclass(frozen=True)
class InstallPlan:
    """What an environment installs, and where: plain data, read by every backend.

    - `kind`: the environment kind it came from (`pip`, `python_env`, `conda`, `docker_env`),
      for labels and messages only; a backend never branches on it.
    - `installer`: `venv` (a virtual environment at the image's `/opt/mlflow-env`, installed
      with uv, pip as fallback, set by set), `conda` (the base's environment, from
      `STAGING/conda-specs.txt` and the pip section, in two phases: `conda_plan`), `runtime`
      (docker_env: nothing is installed; the runtime step's module is added to `base_image`,
      the codeset's own image, whose `python` must have MLflow) or `none` (nothing is built;
      `base_image` is the image to use).
    - `base_image`: the image the environment is installed on (`FROM`), as the user named it.
    - `python`: the Python version the environment is for (`3.11`, or as the file names it);
      "" when the base's own Python decides (requirements.txt, conda).
    - `requirement_sets`: the venv's install steps, in order (build tools first, then the
      dependencies with the MLflow addition); empty for `conda` and `none`.
    - `system_packages`: Debian packages installed first, with apt (`name` or `name=version`).
    - `compile_bytecode`: whether the install compiles `.pyc` files.
    - `files`: every file shipped, build-context path -> bytes: `STAGING/...` (requirement
      files, the conda files, the install scripts), deleted by the install step, and
      `RUNTIME/...` (the runtime step's module), kept at /opt/mlflow-steps/mlflow_steps_runtime.
      `STAGING/constraints.txt` and `STAGING/codeset/...` are files of the codeset the install
      reads (`-c` constraints, path requirements; see `requirements.py`); for a resolved or
      locked environment, `LOCK_FILE` (PEP 751), kept at `LOCK_IN_IMAGE`.
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

    @property
    def constraints(self) -> list[tuple[str, list[str]]]:
        """(file name, lines) of every constraints file the plan ships (`-c`,
        `...constraints.txt`), as pip reads them: backslash continuations joined, ` #`
        comments dropped."""
        found = []
        for name, data in sorted(self.files.items()):
            base = name.rpartition("/")[2]
            if base.endswith("constraints.txt"):
                text = data.decode("utf-8", "replace").replace("\\\n", " ")
                found.append((base, [line.split(" #")[0].strip() for line in text.splitlines()]))
        return found

    @property
    def lock(self) -> bytes | None:
        """The PEP 751 lock of a resolved or locked environment (None otherwise)."""
        return self.files.get(LOCK_FILE)


def venv_plan(
    kind: str,
    where: str,
    environment: Mapping[str, Any],
    base_image: str,
    python: str,
    build_dependencies: list[str],
    dependencies: list[str],
    has_mlflow: bool,
    options: BuildOptions,
    notes: list[str],
    shipped: Mapping[str, bytes] | None = None,
    lock: str | None = None,
) -> InstallPlan:
    """A virtual environment on `base_image`: build tools first, then the dependencies plus
    the MLflow addition (`mlflow_requirement`) when they name no MLflow distribution.
    `shipped`: files of the codeset the install reads, by path under STAGING.

    Dependencies that all carry `--hash` are a lock: installed in hash-checking mode, and the
    MLflow addition, when needed, in a step of its own constrained to the lock's versions, so
    it never breaks hash mode. Some lines with `--hash` and some without is refused (pip
    would refuse it at build time). `lock`: the PEP 751 text kept in the image."""
    addition = mlflow_addition(has_mlflow, options)
    sets = []
    if build_dependencies:
        sets.append(RequirementSet("build-requirements.txt", tuple(build_dependencies)))
    files = {f"{STAGING}/{name}": recipe_file(name) for name in VENV_SCRIPTS}
    if is_lock(dependencies, where):
        sets.append(RequirementSet("requirements.txt", (REQUIRE_HASHES, *dependencies)))
        if addition:
            files[f"{STAGING}/{MLFLOW_CONSTRAINTS}"] = lines_file(pins(dependencies))
            lines = (f"-c {MLFLOW_CONSTRAINTS}", *addition)
            sets.append(RequirementSet("mlflow-requirements.txt", lines))
            notes = [
                *notes,
                f"{where} is a lock without MLflow: {' '.join(addition)} (mlflow_requirement) "
                "is installed after it in a step of its own, constrained to the lock's "
                "versions; what it adds is not hash-checked (list MLflow in the lock to "
                "hash-check it too)",
            ]
    else:
        sets.append(RequirementSet("requirements.txt", tuple(dependencies + addition)))
    for requirement_set in sets:
        files.update(set_files(requirement_set))
    files.update(staged(shipped))
    if lock is not None:
        files[LOCK_FILE] = lock.encode()
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
    environment: Mapping[str, Any],
    base_image: str,
    conda_files: Mapping[str, str],
    options: BuildOptions,
    shipped: Mapping[str, bytes] | None = None,
) -> InstallPlan:
    """conda.yaml applied with conda to the base's environment, in two phases
    (`download-conda-env.sh`, `install-conda-env.sh`). `conda_files`: the text of each of
    `CONDA_FILES` (channels in priority order, conda specs, `NAME=value` variables, the pip
    section with the MLflow addition; one item a line); the pip section reads `shipped`
    files, under STAGING."""
    if set(conda_files) != set(CONDA_FILES):
        raise ValueError(f"conda_files must hold exactly {', '.join(CONDA_FILES)}")
    system = system_packages(options)
    files = {f"{STAGING}/{name}": recipe_file(name) for name in CONDA_SCRIPTS}
    files.update({f"{STAGING}/{name}": text.encode() for name, text in conda_files.items()})
    files.update(staged(shipped))
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


def runtime_plan(environment: Mapping[str, Any], image: str) -> InstallPlan:
    """docker_env: the codeset's image with the runtime step's module added (MLflow builds a
    thin image from it too, with the project's code; here the code is mounted at run time)."""
    return InstallPlan(
        kind="docker_env",
        installer="runtime",
        base_image=image,
        files=runtime_files(),
        environment=environment,
    )


def staged(shipped: Mapping[str, bytes] | None) -> dict[str, bytes]:
    """Files of the codeset the install reads, under STAGING (the install runs there)."""
    return {f"{STAGING}/{name}": data for name, data in sorted((shipped or {}).items())}


def python_base(where: str, declared: str, options: BuildOptions) -> tuple[str, str, list[str]]:
    """(base image, Python, notes) of a venv environment whose file names Python `declared`
    ("" for none): which Python the image gets, and why when the codeset leaves it open
    (MLflow itself would use the running Python there)."""
    if declared:
        grammar.check_python_version(declared, f"{where}: Python version")
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


def is_lock(lines: list[str], where: str) -> bool:
    """True when every requirement line carries `--hash`; StepError when only some do."""
    requirements = [line for line in lines if not line.startswith("-")]
    hashed = [line for line in requirements if " --hash=" in line]
    if hashed and len(hashed) != len(requirements):
        missing = [line for line in requirements if " --hash=" not in line]
        raise StepError(
            f"{where}: {len(hashed)} of {len(requirements)} requirements are pinned with "
            f"--hash, but `{missing[0]}` is not; hash-checking mode (pip's and uv's) needs a "
            "hash on every line: add them all (e.g. `uv pip compile --generate-hashes`) or none"
        )
    return bool(hashed)


def pins(lines: list[str]) -> list[str]:
    """`name==version ; marker` of locked lines, hashes dropped (a constraints file)."""
    return [line.split(" --hash=")[0] for line in lines if not line.startswith("-")]


def mlflow_addition(has_mlflow: bool, options: BuildOptions) -> list[str]:
    """`mlflow_requirement`'s requirements (checked: `grammar.mlflow_requirement_problems`)
    when the environment names no MLflow distribution."""
    if has_mlflow:
        return []
    problems = grammar.mlflow_requirement_problems(options.mlflow_requirement)
    if problems:
        raise StepError(problems)
    return options.mlflow_requirement.split()


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
    return (
        resources.files("mlflow_steps.components.builder.backends.recipe_files") / name
    ).read_bytes()


def runtime_files() -> dict[str, bytes]:
    """The runtime step's module, copied into every image (stdlib + MLflow only)."""
    package = resources.files("mlflow_steps.components.runtime")
    return {
        f"{RUNTIME}/{entry.name}": entry.read_bytes()
        for entry in sorted(package.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".py") and entry.name not in HOST_ONLY_RUNTIME_FILES
    }


def find_uv() -> str | None:
    """The uv binary of the builder's own install (the `uv` package), else uv on PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def set_files(requirement_set: RequirementSet) -> dict[str, bytes]:
    """The files of one requirement set under STAGING: NAME, what pip reads (`pip install -r
    NAME`); NAME.uv, what uv reads, and NAME.uv-args, its command-line arguments, one a line
    (`uv_options.uv_install`: the meaning pip gives the options uv does not read)."""
    uv = uv_install(requirement_set.lines)
    name = f"{STAGING}/{requirement_set.name}"
    return {
        name: lines_file(requirement_set.lines),
        f"{name}.uv": lines_file(uv.lines),
        f"{name}.uv-args": lines_file(uv.args),
    }


def lines_file(lines: tuple[str, ...] | list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()

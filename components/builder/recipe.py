"""Render the image recipe: a Dockerfile assembled from small ordered steps, plus its files.

Layer order, for caching: the environment files are copied and installed first; the install
step deletes its own files, installer and caches in the same RUN (buildah commits a stage as
one layer and Kaniko runs with --single-snapshot, so nothing of them reaches the image); the
runtime step's module comes next; labels go last. One stage: with vfs storage, a second stage
(FROM + COPY --from) cost 12 s of a 47 s build here. The project's code is never copied: it
is mounted at /project when the step runs.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from mlflow_steps import __version__

from ..problems import StepError
from . import conda_to_pypi
from .environments import DEFAULT_PIP_BASE, CondaEnv, Environment, PipEnv, PythonEnv
from .indexes import SECRET_ID
from .options import BuildOptions

STAGING = "/tmp/mlflow-steps"
VENV = "/opt/mlflow-env"
RUNTIME_DIR = "/opt/mlflow-steps/mlflow_steps_runtime"
DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?")
# The runtime step's spec is read by the generators on the host; it never ships in an image.
HOST_ONLY_RUNTIME_FILES = ("step.py",)


@dataclass
class Recipe:
    """What is built: the Dockerfile and the files of the build context (relative paths)."""

    base_image: str
    dockerfile: str
    files: dict[str, bytes] = field(default_factory=dict)
    needs_uv: bool = False
    # What the user should know about choices made for them (shown by inspect and build).
    notes: list[str] = field(default_factory=list)

    def write_context(self, directory: Path) -> Path:
        """Write Dockerfile and files into `directory`; the uv binary is added when found."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "Dockerfile").write_text(self.dockerfile, encoding="utf-8")
        for name, content in self.files.items():
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        if self.needs_uv:
            uv = find_uv()
            if uv:
                shutil.copy2(uv, directory / "mlflow-steps" / "uv")
        return directory


def find_uv() -> str | None:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def recipe_file(name: str) -> bytes:
    return (resources.files(__package__) / "recipe_files" / name).read_bytes()


def runtime_files() -> dict[str, bytes]:
    """The runtime step's module, copied into every image (stdlib + MLflow only)."""
    package = resources.files("mlflow_steps.components.runtime")
    return {
        f"mlflow-steps-runtime/{entry.name}": entry.read_bytes()
        for entry in sorted(package.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".py") and entry.name not in HOST_ONLY_RUNTIME_FILES
    }


def mlflow_additions(env: Environment, options: BuildOptions) -> list[str]:
    return [] if env.has_mlflow() else options.mlflow_requirement.split()


def base_image_for(env: Environment, options: BuildOptions) -> str:
    """The seed's bases: miniconda for conda, python:3.6.13 for requirements.txt,
    python:<python> for python_env.yaml (and conda.yaml built with uv)."""
    if isinstance(env, CondaEnv) and options.env_manager == "conda":
        return f"continuumio/miniconda3:{options.miniconda_version}"
    return python_choice(env, options, python_of(env))[0]


def python_choice(env: Environment, options: BuildOptions, declared: str) -> tuple[str, list[str]]:
    """(base image, notes) of a venv environment whose file names Python `declared` ("" for
    none): which Python the image gets, and why when the codeset leaves it open (MLflow itself
    would use the running Python there)."""
    if isinstance(env, PipEnv):
        return options.base_image or DEFAULT_PIP_BASE, []
    where = env.path.name if env.path else env.kind
    if options.base_image:
        if declared:
            return options.base_image, []
        return options.base_image, [
            f"{where} names no Python version: the base image's own Python is used "
            f"(base_image={options.base_image})"
        ]
    if declared:
        return f"python:{declared}", []
    version = options.python_version
    return f"python:{version}", [
        f"{where} names no Python version: using Python {version} (the python_version "
        f"input), base image python:{version}"
    ]


def python_of(env: Environment) -> str:
    if isinstance(env, PythonEnv):
        return env.python
    if isinstance(env, CondaEnv):
        return conda_to_pypi.convert(env).python
    return ""


# --- Dockerfile steps -------------------------------------------------------------------------


def header(env: Environment) -> list[str]:
    return [
        f"# Generated by mlflow-steps {__version__} for a {env.kind} environment. Do not edit.",
        "# The codeset is not in the image: it is mounted at /project when the step runs.",
    ]


def from_step(base: str, stage: str | None = None) -> list[str]:
    return [f"FROM {base}" + (f" AS {stage}" if stage else "")]


def install_step(*scripts: list[str]) -> list[str]:
    """One RUN for every install script (system packages, then the environment): one layer,
    and the staging folder and package lists never reach the image."""
    commands = [" ".join(["sh", f"{STAGING}/{script}", *args]) for script, *args in scripts]
    return [
        "# Environment files first: a change to the project's code never invalidates this layer.",
        f"COPY mlflow-steps/ {STAGING}/",
        "# Index settings, credentials included, are a build secret mounted for this RUN only.",
        f"RUN --mount=type=secret,id={SECRET_ID} " + " \\\n && ".join(commands),
    ]


def runtime_step() -> list[str]:
    return [
        "# The runtime step's entry point (python -m mlflow_steps_runtime).",
        f"COPY mlflow-steps-runtime/ {RUNTIME_DIR}/",
    ]


def finish_step(env: Environment, path: str | None) -> list[str]:
    lines = []
    if path:
        lines.append(f"ENV VIRTUAL_ENV={VENV} PATH={path}")
    lines += [
        "WORKDIR /project",
        f'LABEL io.github.mlflow-steps.version="{__version__}" '
        f'io.github.mlflow-steps.environment-kind="{env.kind}"',
        'ENTRYPOINT ["python", "-m", "mlflow_steps_runtime"]',
    ]
    return lines


# --- one recipe per buildable kind --------------------------------------------------------------


def render(env: Environment, options: BuildOptions) -> Recipe:
    if isinstance(env, CondaEnv) and options.env_manager == "conda":
        return render_conda(env, options)
    if isinstance(env, (PipEnv, PythonEnv, CondaEnv)):
        return render_venv(env, options)
    raise ValueError(f"{env.kind} environments are not built")


def venv_packages(env: PipEnv | PythonEnv | CondaEnv) -> conda_to_pypi.PypiEnvironment:
    """What a venv environment installs, in one shape (a conda.yaml converted once)."""
    if isinstance(env, PipEnv):
        return conda_to_pypi.PypiEnvironment("", [], env.lines)
    if isinstance(env, PythonEnv):
        return conda_to_pypi.PypiEnvironment(env.python, env.build_dependencies, env.dependencies)
    return conda_to_pypi.convert(env)


def render_venv(env: PipEnv | PythonEnv | CondaEnv, options: BuildOptions) -> Recipe:
    packages = venv_packages(env)
    base, notes = python_choice(env, options, packages.python)
    system = system_packages(options)
    files: dict[str, bytes] = {
        "mlflow-steps/install-python-env.sh": recipe_file("install-python-env.sh"),
        "mlflow-steps/index-settings.sh": recipe_file("index-settings.sh"),
        "mlflow-steps/compile-bytecode.py": recipe_file("compile-bytecode.py"),
        "mlflow-steps/check-libraries.py": recipe_file("check-libraries.py"),
    }
    installs = []
    if packages.build_dependencies:
        files["mlflow-steps/build-requirements.txt"] = lines_file(packages.build_dependencies)
        installs.append("build-requirements.txt")
    files["mlflow-steps/requirements.txt"] = lines_file(
        packages.dependencies + mlflow_additions(env, options)
    )
    installs.append("requirements.txt")
    files.update(system_packages_files(system))
    files.update(runtime_files())
    install = ["install-python-env.sh", VENV, compile_flag(options), *installs]
    steps = [
        header(env),
        from_step(base),
        install_step(*system_packages_install(system), install),
        runtime_step(),
        finish_step(env, f"{VENV}/bin:$PATH"),
    ]
    return Recipe(base, join(steps), files, needs_uv=True, notes=notes + packages.notes)


def render_conda(env: CondaEnv, options: BuildOptions) -> Recipe:
    base = base_image_for(env, options)
    system = system_packages(options)
    files = {
        "mlflow-steps/install-conda-env.sh": recipe_file("install-conda-env.sh"),
        "mlflow-steps/index-settings.sh": recipe_file("index-settings.sh"),
        "mlflow-steps/check-libraries.py": recipe_file("check-libraries.py"),
        "mlflow-steps/environment.yaml": env.environment_yaml(
            mlflow_additions(env, options)
        ).encode(),
        **system_packages_files(system),
        **runtime_files(),
    }
    steps = [
        header(env),
        from_step(base),
        install_step(
            *system_packages_install(system), ["install-conda-env.sh", "environment.yaml"]
        ),
        runtime_step(),
        finish_step(env, None),
    ]
    return Recipe(base, join(steps), files)


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
    return {"mlflow-steps/install-system-packages.sh": recipe_file("install-system-packages.sh")}


def system_packages_install(names: list[str]) -> list[list[str]]:
    return [["install-system-packages.sh", *names]] if names else []


def compile_flag(options: BuildOptions) -> str:
    return "--compile-bytecode" if options.compile_bytecode else "--no-compile-bytecode"


def lines_file(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def join(steps: list[list[str]]) -> str:
    return "\n".join(line for step in steps for line in step) + "\n"

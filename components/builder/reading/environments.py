"""One small class per environment kind (repo2docker's buildpack shape).

Each kind knows its default file, how to load and check it, its normal form (what the tag
hashes) and how it turns itself into the one `InstallPlan` (`plan.py`) that every backend
reads. `DETECTION_ORDER` is the order in which default files are looked for when MLproject
names none: first match wins.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ...problems import StepError
from ...subprocess_env import minimal_env
from ..planning import resolution
from ..planning.options import BuildOptions
from ..planning.plan import (
    DEFAULT_PIP_BASE,
    InstallPlan,
    conda_plan,
    find_uv,
    mlflow_addition,
    python_base,
    runtime_plan,
    venv_plan,
)
from . import conda_to_pypi, grammar, limits
from . import requirements as reqs
from .inside import outside, refusal
from .yamlfile import load_yaml, scalar_text


@dataclass
class Environment:
    """An environment file, loaded and checked. Subclasses fill in the hooks."""

    kind: ClassVar[str]
    default_file: ClassVar[str] = ""
    path: Path | None = None
    # Files of the codeset the install reads (-c constraints, path requirements), by their
    # path relative to the installer's folder; the tag hashes them with the recipe's files.
    shipped: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def detect(cls, root: Path) -> Path | None:
        """The file this kind is detected by in `root`, when it is there."""
        path = root / cls.default_file
        return path if present(path) else None

    @classmethod
    def load(cls, path: Path, problems: list[str], root: Path | None = None) -> Environment | None:
        """Load the file at `path`; every file it names must resolve inside `root` (the
        source workspace; default: the file's folder). Paths in it are relative to its folder
        (the codeset's, where MLflow and conda run pip)."""
        raise NotImplementedError

    def canonical(self) -> dict[str, Any]:
        """The normal form: what decides the environment, and nothing else."""
        raise NotImplementedError

    def has_mlflow(self) -> bool:
        raise NotImplementedError

    def install_plan(self, options: BuildOptions) -> InstallPlan:
        """What this environment installs, given the builder's inputs; raises StepError."""
        raise NotImplementedError

    @property
    def where(self) -> str:
        return self.path.name if self.path else self.kind

    def normal_form(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.canonical()}

    def venv(
        self,
        options: BuildOptions,
        base: str,
        python: str,
        dependencies: list[str],
        build: list[str] | None = None,
        notes: list[str] | None = None,
        normal_form: dict[str, Any] | None = None,
        lock: str | None = None,
    ) -> InstallPlan:
        """This environment's venv plan on `base` (see `plan.venv_plan`)."""
        return venv_plan(
            self.kind,
            self.where,
            normal_form or self.normal_form(),
            base,
            python,
            build or [],
            dependencies,
            self.has_mlflow(),
            options,
            notes or [],
            self.shipped,
            lock,
        )

    def venv_for_python(
        self, options: BuildOptions, declared: str, dependencies: list[str], **more: Any
    ) -> InstallPlan:
        """A venv on python:<declared> (else `base_image`, else `python_version`), with a note
        when the file names no Python."""
        base, python, notes = python_base(self.where, declared, options)
        more["notes"] = notes + more.get("notes", [])
        return self.venv(options, base, python, dependencies, **more)


@dataclass
class PipEnv(Environment):
    """`requirements.txt`: installed into a virtual environment on `base_image`."""

    kind: ClassVar[str] = "pip"
    default_file: ClassVar[str] = "requirements.txt"
    lines: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path, problems: list[str], root: Path | None = None) -> PipEnv | None:
        found: list[str] = []
        read = reqs.read_requirements_file(path, root or path.parent, found)
        if not found and not any(not line.startswith("-") for line in read.lines):
            found.append(f"{path.name}: lists no packages; add the packages the project needs")
        problems.extend(found)
        if found:
            return None
        return cls(path=path, lines=read.install_lines(), shipped=read.files())

    def canonical(self) -> dict[str, Any]:
        return {"requirements": self.lines}

    def has_mlflow(self) -> bool:
        return reqs.mentions_mlflow(self.lines)

    def install_plan(self, options: BuildOptions) -> InstallPlan:
        """A venv on `base_image` (default python:3.6.13, the seed's), with its own Python."""
        return self.venv(options, options.base_image or DEFAULT_PIP_BASE, "", self.lines)


@dataclass
class PythonEnv(Environment):
    """MLflow's `python_env.yaml`: `python` (optional), `build_dependencies`, `dependencies`."""

    kind: ClassVar[str] = "python_env"
    default_file: ClassVar[str] = "python_env.yaml"
    python: str = ""
    build_dependencies: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path, problems: list[str], root: Path | None = None) -> PythonEnv | None:
        found: list[str] = []
        data = load_yaml(path, found)
        if not found and not isinstance(data, dict):
            found.append(f"{path.name}: must be a mapping with `python` and `dependencies`")
        if found:
            problems.extend(found)
            return None
        # MLflow accepts a file without `python` (it uses the running Python); the builder
        # then uses its `python_version` input, and `inspect` says so.
        python = data.get("python")
        if isinstance(python, (float, int)):
            written = scalar_text(path, "python") or str(python)
            found.append(
                f"{path.name}: `python: {written}` is read by YAML as the number {python!r}, "
                f'which MLflow rejects too; quote it: python: "{written}"'
            )
        elif python is not None and (not isinstance(python, str) or not python.strip()):
            found.append(f'{path.name}: `python` must be a version, e.g. "3.10", or left out')
        elif python is not None and grammar.python_version_problem(python.strip()):
            found.append(
                f"{path.name}: `python` {python.strip()!r} "
                f"{grammar.python_version_problem(python.strip())}"
            )
        lists, shipped = {}, {}
        for key in ("build_dependencies", "dependencies"):
            value = data.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                found.append(f"{path.name}: `{key}` must be a list of requirement strings")
                value = []
            read = reqs.read_requirement_list(
                value,
                f"{path.name} {key}",
                path.parent,
                root or path.parent,
                found,
                constraints_file="build-constraints.txt" if key == "build_dependencies" else "",
            )
            lists[key] = read.install_lines()
            shipped.update(read.files())
        problems.extend(found)
        if found:
            return None
        return cls(
            path=path,
            python="" if python is None else str(python).strip(),
            build_dependencies=lists["build_dependencies"],
            dependencies=lists["dependencies"],
            shipped=shipped,
        )

    def canonical(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "build_dependencies": self.build_dependencies,
            "dependencies": self.dependencies,
        }

    def has_mlflow(self) -> bool:
        return reqs.mentions_mlflow(self.dependencies)

    def install_plan(self, options: BuildOptions) -> InstallPlan:
        """A venv on python:<python> (else `base_image`, else `python_version`)."""
        return self.venv_for_python(
            options, self.python, self.dependencies, build=self.build_dependencies
        )


@dataclass
class CondaEnv(Environment):
    """`conda.yaml`: applied to the base environment of `continuumio/miniconda3`.

    Normal form: the env `name`/`prefix` are dropped (they do not change what is installed),
    conda specs lose their whitespace around operators and are sorted, the pip sub-list is
    normalised like requirements.txt. Channel ORDER is kept: conda uses it for priority.
    """

    kind: ClassVar[str] = "conda"
    default_file: ClassVar[str] = "conda.yaml"
    channels: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    pip: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, problems: list[str], root: Path | None = None) -> CondaEnv | None:
        found: list[str] = []
        data = load_yaml(path, found)
        if not found and not isinstance(data, dict):
            found.append(f"{path.name}: must be a mapping with `channels` and `dependencies`")
        if found:
            problems.extend(found)
            return None
        channels = data.get("channels") or []
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            found.append(f"{path.name}: `channels` must be a list of channel names")
            channels = []
        deps, pip_lists = [], []
        raw_deps = data.get("dependencies")
        if not isinstance(raw_deps, list) or not raw_deps:
            found.append(f"{path.name}: `dependencies` must be a non-empty list of packages")
            raw_deps = []
        for dep in raw_deps:
            if isinstance(dep, dict) and set(dep) == {"pip"} and isinstance(dep["pip"], list):
                pip_lists += [str(p) for p in dep["pip"]]
            elif isinstance(dep, (str, int, float)):
                deps.append(normalise_conda_spec(str(dep)))
            else:
                found.append(f"{path.name}: dependency {dep!r} must be a string or {{pip: [...]}}")
        pip = reqs.read_requirement_list(
            pip_lists, f"{path.name} pip", path.parent, root or path.parent, found
        )
        variables = data.get("variables") or {}
        if not isinstance(variables, dict):
            found.append(f"{path.name}: `variables` must be a mapping")
            variables = {}
        found += conda_line_problems(path.name, channels, deps, variables)
        problems.extend(found)
        if found:
            return None
        return cls(
            path=path,
            channels=[c.strip() for c in channels],
            dependencies=sorted(set(deps)),
            pip=pip.install_lines(),
            variables={str(k): str(v) for k, v in sorted(variables.items())},
            shipped=pip.files(),
        )

    def canonical(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "dependencies": self.dependencies,
            "pip": self.pip,
            "variables": self.variables,
        }

    def has_mlflow(self) -> bool:
        conda_names = {conda_name(spec) for spec in self.dependencies}
        return bool(conda_names & reqs.MLFLOW_DISTRIBUTIONS) or reqs.mentions_mlflow(self.pip)

    def install_plan(self, options: BuildOptions) -> InstallPlan:
        """env_manager=conda: `conda env update` on continuumio/miniconda3:<miniconda_version>;
        env_manager=uv: the conda dependencies as PyPI requirements (`conda_to_pypi`) in a venv
        on python:<python>, as python_env.yaml."""
        # How the file is read decides the environment: the env manager is part of its form.
        normal_form = {**self.normal_form(), "env_manager": options.env_manager}
        if options.env_manager == "conda":
            base = f"continuumio/miniconda3:{options.miniconda_version}"
            addition = mlflow_addition(self.has_mlflow(), options)
            return conda_plan(normal_form, base, self.conda_files(addition), options, self.shipped)
        pypi = conda_to_pypi.convert(self.where, self.channels, self.dependencies, self.pip)
        return self.venv_for_python(
            options,
            pypi.python,
            pypi.dependencies,
            build=pypi.build_dependencies,
            notes=pypi.notes,
            normal_form=normal_form,
        )

    def conda_files(self, extra_pip: list[str]) -> dict[str, str]:
        """The files of the conda plan's two phases (`plan.CONDA_FILES`), one item a line:
        the channels in priority order, the conda specs (`pip` added when any pip package is
        listed), the `variables` as NAME=value, and the pip section with `extra_pip`."""
        pip = self.pip + extra_pip
        specs = list(self.dependencies)
        if pip and "pip" not in {conda_name(d) for d in self.dependencies}:
            specs.append("pip")
        variables = [f"{name}={value}" for name, value in self.variables.items()]
        return {
            "conda-channels.txt": lines_text(self.channels),
            "conda-specs.txt": lines_text(specs),
            "conda-variables.txt": lines_text(variables),
            "pip-requirements.txt": lines_text(pip),
        }


VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def conda_line_problems(
    where: str, channels: list[str], specs: list[str], variables: dict[Any, Any]
) -> list[str]:
    """Each channel, conda spec and variable is written as one line of a file the install
    scripts read (`conda_files`): none may hold a line break or another control character,
    a channel or spec may not start with `-` (an option), and a variable's name is a shell
    name (the grammar of POSIX environment variable names)."""
    found = []
    for what, values in (("channel", channels), ("dependency", specs)):
        for value in values:
            text = str(value)
            if any(ord(c) < 32 or ord(c) == 127 for c in text) or text.strip().startswith("-"):
                found.append(f"{where}: {what} {text!r} must be one line and not start with `-`")
    for name, value in variables.items():
        if not VARIABLE_NAME.fullmatch(str(name)):
            found.append(f"{where}: variable name {str(name)!r} must match [A-Za-z_][A-Za-z0-9_]*")
        if any(ord(c) < 32 or ord(c) == 127 for c in str(value)):
            found.append(f"{where}: variable {name}'s value must be one line")
    return found


def lines_text(items: list[str]) -> str:
    return "".join(f"{item}\n" for item in items)


@dataclass
class LockEnv(Environment):
    """A lock: exact distributions with hashes (`lines`, as `resolution.locked_lines` writes
    them), installed in hash-checking mode; `lock` is its PEP 751 text, kept in the image."""

    lines: list[str] = field(default_factory=list)
    lock: str = ""
    python: str = ""

    def canonical(self) -> dict[str, Any]:
        return {"python": self.python, "requirements": self.lines}

    def has_mlflow(self) -> bool:
        return reqs.mentions_mlflow(self.lines)

    def install_plan(self, options: BuildOptions) -> InstallPlan:
        """A venv on python:<python> (else `base_image`, else `python_version`)."""
        return self.venv_for_python(options, self.python, self.lines, lock=self.lock)


@dataclass
class UvProject(LockEnv):
    """A uv project, detected as MLflow 3.17's `mlflow.utils.uv_utils.detect_uv_project` does
    (both `uv.lock` and `pyproject.toml` in the folder) and exported as MLflow's
    `export_uv_requirements` does (`uv export --frozen --no-dev`, the project itself left out),
    but with hashes, as PEP 751. Python: `.python-version` (uv's file), else python_version."""

    kind: ClassVar[str] = "uv"
    default_file: ClassVar[str] = "uv.lock"

    @classmethod
    def detect(cls, root: Path) -> Path | None:
        lock, pyproject = super().detect(root), root / "pyproject.toml"
        return lock if lock and present(pyproject) else None

    @classmethod
    def load(cls, path: Path, problems: list[str], root: Path | None = None) -> UvProject | None:
        for name in ("pyproject.toml", ".python-version"):
            companion = path.parent / name
            why = outside(root or path.parent, companion, name)
            if (companion.exists() or companion.is_symlink()) and why:
                problems.append(refusal(name, why))
                return None
        python = python_version_file(path.parent / ".python-version", problems)
        if python is None:
            return None
        for name in ("pyproject.toml", "uv.lock"):  # uv reads them: regular and bounded
            try:
                limits.check_regular(path.parent / name, name, limits.LOCK_FILE)
            except StepError as exc:
                problems.extend(exc.problems)
                return None
        uv = find_uv()
        if not uv:
            problems.append(f"{path.name}: reading a uv project needs uv here: pip install uv")
            return None
        argv = [
            uv, "export", "--no-config", "--frozen", "--no-dev", "--no-emit-workspace",
            "--no-header", "--format", "pylock.toml", "--no-build", "--offline",
        ]  # fmt: skip
        # The codeset is untrusted: uv reads its lock only (no build, no network), in an
        # environment without the builder's credentials (subprocess_env).
        with tempfile.TemporaryDirectory(prefix="mlflow-steps-home-") as home:
            done = subprocess.run(
                argv, cwd=path.parent, capture_output=True, text=True,
                env=minimal_env({"UV_NO_CACHE": "1"}, home=home),
            )  # fmt: skip
        if done.returncode != 0:
            said = done.stderr.strip().splitlines()
            reason = resolution.without_userinfo(said[-1] if said else f"exit {done.returncode}")
            problems.append(f"{path.name}: `uv export --frozen` failed: {reason}")
            return None
        return lock_from(cls, path, resolution.without_userinfo(done.stdout), python, problems)


@dataclass
class PyLock(LockEnv):
    """A PEP 751 `pylock.toml`, installed as a lock (its versions and hashes, from the index).
    Python: the python_version input (a lock names a range, not a version)."""

    kind: ClassVar[str] = "pylock"
    default_file: ClassVar[str] = "pylock.toml"

    @classmethod
    def load(cls, path: Path, problems: list[str], root: Path | None = None) -> PyLock | None:
        try:
            text = limits.read_text(path, path.name, limits.LOCK_FILE)
        except StepError as exc:
            problems.extend(exc.problems)
            return None
        return lock_from(cls, path, resolution.without_userinfo(text), "", problems)


def present(path: Path) -> bool:
    """Anything but a folder at `path` (a FIFO or device too: refused by name when read)."""
    return (path.exists() or path.is_symlink()) and not path.is_dir()


def python_version_file(path: Path, problems: list[str]) -> str | None:
    """The Python version uv's `.python-version` names (its first line that is not a
    comment), "" when there is no such file; None (a problem added) when it is empty, not a
    regular file, too large or not a version."""
    if not (path.exists() or path.is_symlink()):
        return ""
    try:
        text = limits.read_text(path, ".python-version", limits.SMALL_FILE)
    except StepError as exc:
        problems.extend(exc.problems)
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("#")]
    if not lines:
        problems.append(
            ".python-version: is empty; write the Python version the project needs, e.g. 3.11, "
            "or delete the file"
        )
        return None
    why = grammar.python_version_problem(lines[0])
    if why:
        problems.append(f".python-version: {lines[0][:80]!r} {why}")
        return None
    return lines[0]


def lock_from(kind: type[Any], path: Path, text: str, python: str, problems: list[str]) -> Any:
    try:
        distributions = resolution.read_pylock(text, path.name)
    except StepError as exc:
        problems.extend(exc.problems)
        return None
    if not distributions:
        problems.append(f"{path.name}: locks no packages; add the packages the project needs")
        return None
    return kind(path=path, lines=resolution.locked_lines(distributions), lock=text, python=python)


@dataclass
class DockerEnv(Environment):
    """`docker_env` in MLproject: the image is given; the builder adds the runtime step's
    module to it (a thin image), nothing else."""

    kind: ClassVar[str] = "docker_env"
    image: str = ""

    @classmethod
    def from_mlproject(cls, where: str, value: Any, problems: list[str]) -> DockerEnv | None:
        image = value.get("image") if isinstance(value, dict) else None
        if not isinstance(image, str) or not image.strip():
            problems.append(f"{where}: `docker_env` needs an `image`, e.g. image: my/env:1.0")
            return None
        why = grammar.reference_problem(image.strip())
        if why:
            problems.append(f"{where}: docker_env `image` {image.strip()!r} {why}")
            return None
        return cls(image=image.strip())

    def canonical(self) -> dict[str, Any]:
        return {"image": self.image}

    def has_mlflow(self) -> bool:
        return True

    def install_plan(self, options: BuildOptions) -> InstallPlan:
        """The image, with the runtime step's module added."""
        return runtime_plan(self.normal_form(), self.image)


def normalise_conda_spec(spec: str) -> str:
    """`NumPy >= 1.2` -> `numpy>=1.2`; `numpy  1.2   py_0` -> `numpy 1.2 py_0`."""
    first, *rest = re.sub(r"\s*([<>=!,]+)\s*", r"\1", spec.strip()).split()
    name = re.match(r"^[^<>=!]*", first)
    head = name[0].lower() + first[len(name[0]) :] if name else first
    return " ".join([head, *rest])


def conda_name(spec: str) -> str:
    """`conda-forge::mlflow>=2` -> `mlflow`."""
    return re.split(r"[\s<>=!]", spec, maxsplit=1)[0].split("::")[-1]


# MLproject key -> kind, and the order default files are looked for (first match wins).
KINDS_BY_KEY: dict[str, type[Environment]] = {
    "conda_env": CondaEnv,
    "python_env": PythonEnv,
    "docker_env": DockerEnv,
}
DETECTION_ORDER: list[type[Environment]] = [PythonEnv, CondaEnv, UvProject, PyLock, PipEnv]

"""Read an MLflow codeset: its MLproject, entry points and environment file.

Every problem is collected and raised at once (as `StepError`), each naming the file, what is
wrong and how to fix it. Detection never depends on the current directory: pass the root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...problems import StepError
from ...runtime.inputs import RESERVED_NAMES, InputError, codeset_dir, parameter_name_problem
from .environments import DETECTION_ORDER, KINDS_BY_KEY, DockerEnv, Environment, PythonEnv
from .inside import outside, refusal
from .yamlfile import load_yaml

# MLflow accepts any parameter type string; these are the ones it (or the runtime step) checks:
# int/float by conversion, path/uri by MLflow, bool/boolean against the boolean words. Any
# other type is passed through as a string, with a warning.
CHECKED_TYPES = ("string", "str", "int", "float", "path", "uri", "bool", "boolean")
KNOWN_KEYS = {"name", "conda_env", "python_env", "docker_env", "entry_points"}
# Names MLflow does not read (it wants `MLproject`, any case, no extension).
MISNAMED = re.compile(r"^mlproject\.(ya?ml|txt)$", re.IGNORECASE)


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str = "string"
    default: Any = None

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class EntryPoint:
    name: str
    command: str
    parameters: dict[str, Parameter] = field(default_factory=dict)


@dataclass(frozen=True)
class Codeset:
    root: Path
    # None: a folder without MLproject, which MLflow runs by script name (`-e train.py`).
    mlproject: Path | None
    name: str | None
    entry_points: dict[str, EntryPoint]
    environment: Environment
    # What MLflow accepts but the user may not expect (shown by `inspect`, logged by `build`).
    warnings: list[str] = field(default_factory=list)
    # The source workspace the codeset sits in (`root` itself unless a `context` is given):
    # every file the codeset names must resolve inside it.
    workspace: Path | None = None


def find_mlproject(root: Path) -> list[Path]:
    """MLflow looks the file up case-insensitively (`MLproject`, `MLProject`, `mlproject`).
    Anything but a folder counts: a FIFO or device is then refused by name when read."""
    return sorted(p for p in root.iterdir() if p.name.lower() == "mlproject" and not p.is_dir())


def codeset_folder(workspace: Path, context: str) -> Path:
    """`context` (the folder of the MLproject, relative to the workspace) inside `workspace`."""
    if not workspace.is_dir():
        raise StepError(
            f"codeset {workspace}: not a directory; pass the folder that holds MLproject"
        )
    root = workspace / (context or ".")
    try:
        codeset_dir(str(workspace), context)  # the runtime step's rule: one rule for both
    except InputError as exc:
        raise StepError(str(exc)) from None
    if not root.is_dir():
        raise StepError(
            f"context `{context}`: {root} is not a folder; give the folder of the MLproject "
            "relative to the workspace"
        )
    return root


def load_codeset(path: Path | str, context: str = ".") -> Codeset:
    """The codeset at `context` inside the workspace `path` (default: `path` itself)."""
    workspace = Path(path)
    root = codeset_folder(workspace, context)
    candidates = find_mlproject(root)
    if not candidates:
        misnamed = sorted(p.name for p in root.iterdir() if MISNAMED.match(p.name))
        if misnamed:
            raise StepError(
                f"codeset {root}: {misnamed[0]} is not read by MLflow, which looks for a file "
                f"named exactly MLproject (no extension): rename it to MLproject"
            )
        return load_without_mlproject(root, workspace)
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise StepError(f"codeset {root}: several MLproject files ({names}); keep exactly one")
    mlproject = candidates[0]
    problems: list[str] = []
    why = outside(workspace, mlproject, mlproject.name)
    if why:
        raise StepError(refusal(mlproject.name, why))
    spec = load_yaml(mlproject, problems)
    if problems:
        raise StepError(problems)
    if not isinstance(spec, dict):
        raise StepError(
            f"{mlproject.name}: must be a YAML mapping with keys {sorted(KNOWN_KEYS)}, "
            f"got {type(spec).__name__}"
        )
    unknown = sorted(set(map(str, spec)) - KNOWN_KEYS)
    if unknown:
        problems.append(
            f"{mlproject.name}: unknown key(s) {unknown}; valid keys are {sorted(KNOWN_KEYS)}"
        )
    name = spec.get("name")
    if name is not None and not isinstance(name, str):
        problems.append(f"{mlproject.name}: `name` must be a string")
    warnings: list[str] = []
    entry_points = read_entry_points(mlproject.name, spec.get("entry_points"), problems, warnings)
    warnings += shared_name_warnings(entry_points)
    environment = detect_environment(root, mlproject.name, spec, problems, workspace)
    if problems or environment is None:
        raise StepError(problems)
    docker_env = spec.get("docker_env")
    if isinstance(docker_env, dict) and docker_env.get("volumes"):
        warnings.append(
            f"{mlproject.name}: docker_env `volumes` are not mounted by the steps (MLflow "
            "mounts them with `docker run -v`); mount them in the engine's pod, or read the "
            "data from the artifact store"
        )
    return Codeset(root, mlproject, name, entry_points, environment, warnings, workspace)


def load_without_mlproject(root: Path, workspace: Path) -> Codeset:
    """A folder without MLproject, as MLflow 3.17.2's `_project_spec.load_project` reads it:
    no entry points but its scripts (`mlflow run -e train.py -P alpha=0.3` runs
    `python train.py --alpha 0.3`), and the environment of the first default file found
    (python_env.yaml, conda.yaml, then this project's own uv.lock, pylock.toml,
    requirements.txt); with none, MLflow's default python_env (`_PythonEnv()`: no
    dependencies), here Python `python_version` with MLflow alone."""
    scripts = sorted(p.name for p in root.iterdir() if p.suffix in (".py", ".sh") and p.is_file())
    if not scripts:
        raise StepError(
            f"codeset {root}: no MLproject file and no .py/.sh script at its root; add an "
            "MLproject (name, environment file, entry_points), or the script MLflow runs by "
            "name (`mlflow run -e train.py`)"
        )
    problems: list[str] = []
    warnings = [
        f"codeset {root}: no MLproject; its entry points are its scripts ({', '.join(scripts)}), "
        "run by name (mlflow_entrypoint=train.py), each parameter given appended as --name value"
    ]
    environment: Environment | None
    if any(kind.detect(root) is not None for kind in DETECTION_ORDER):
        environment = detect_environment(root, "codeset", {}, problems, workspace)
    else:
        environment = PythonEnv()
        warnings.append(
            f"codeset {root}: no environment file; MLflow's default environment (python_env "
            "with no dependencies): Python python_version and MLflow alone"
        )
    if problems or environment is None:
        raise StepError(problems)
    return Codeset(root, None, None, {}, environment, warnings, workspace)


def shared_name_warnings(entry_points: dict[str, EntryPoint]) -> list[str]:
    """A parameter named like a runtime step input never gets that input's value."""
    return [
        f"entry point `{entry.name}`: parameter `{name}` has the name of the runtime step's "
        f"input `{name}`; the step input never fills it: it gets its value only from "
        f"mlflow_entrypoint_args ({name}=...) or its default"
        for entry in entry_points.values()
        for name in entry.parameters
        if name in RESERVED_NAMES
    ]


def read_entry_points(
    where: str, raw: Any, problems: list[str], warnings: list[str]
) -> dict[str, EntryPoint]:
    if raw is None:
        problems.append(f"{where}: no `entry_points`; declare at least a `main` entry point")
        return {}
    if not isinstance(raw, dict):
        problems.append(f"{where}: `entry_points` must be a mapping of name -> entry point")
        return {}
    entry_points: dict[str, EntryPoint] = {}
    for ep_name, ep in raw.items():
        ep_where = f"{where}: entry point `{ep_name}`"
        if not isinstance(ep, dict):
            problems.append(f"{ep_where}: must be a mapping with `command` (and `parameters`)")
            continue
        command = ep.get("command")
        if not isinstance(command, str) or not command.strip():
            problems.append(f"{ep_where}: `command` is missing or not a string")
            continue
        lines = command.strip().splitlines()
        if any(not line.rstrip().endswith("\\") for line in lines[:-1]):
            warnings.append(
                f"{ep_where}: `command` has {len(lines)} lines, and MLflow runs it with "
                "`bash -c`, so each line is a command of its own (MLflow 3.17.2 does the same); "
                "end a line with \\ to continue it, or write the command with `>` (folded)"
            )
        params = read_parameters(ep_where, ep.get("parameters") or {}, problems, warnings)
        entry_points[str(ep_name)] = EntryPoint(str(ep_name), command, params)
    if "main" not in raw:
        valid = ", ".join(map(str, raw)) or "none"
        problems.append(f"{where}: no `main` entry point (found: {valid}); add `main`")
    return entry_points


def read_parameters(
    where: str, raw: Any, problems: list[str], warnings: list[str]
) -> dict[str, Parameter]:
    if not isinstance(raw, dict):
        problems.append(f"{where}: `parameters` must be a mapping of name -> type or spec")
        return {}
    params: dict[str, Parameter] = {}
    for p_name, p in raw.items():
        why = parameter_name_problem(str(p_name))
        if why:
            problems.append(f"{where}: parameter {str(p_name)!r} {why}")
            continue
        if isinstance(p, str):
            p_type, default = p, None
        elif isinstance(p, dict):
            p_type, default = p.get("type", "string"), p.get("default")
        else:
            # MLflow fails on these too (it calls .get on the value).
            problems.append(f"{where}: parameter `{p_name}` must be a type or {{type, default}}")
            continue
        p_type = str(p_type)
        if p_type not in CHECKED_TYPES:
            warnings.append(
                f"{where}: parameter `{p_name}` has type `{p_type}`, which MLflow does not "
                "check; its value is passed through as a string"
            )
        params[str(p_name)] = Parameter(str(p_name), p_type, default)
    return params


def detect_environment(
    root: Path, where: str, spec: dict, problems: list[str], workspace: Path | None = None
) -> Environment | None:
    """The file MLproject names wins; otherwise the first default file in DETECTION_ORDER.
    Every file must resolve inside `workspace` (default: `root`)."""
    workspace = workspace or root
    declared = [key for key in KINDS_BY_KEY if key in spec]
    if len(declared) > 1:
        problems.append(f"{where}: declares {' and '.join(declared)}; keep only one")
        return None
    if declared:
        key = declared[0]
        kind = KINDS_BY_KEY[key]
        if kind is DockerEnv:
            return DockerEnv.from_mlproject(where, spec[key], problems)
        value = spec[key]
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}: `{key}` must name a file in the codeset")
            return None
        why = outside(workspace, root / value, value)
        if why:
            problems.append(f"{where}: `{key}: {value}` {why}, outside the codeset")
            return None
        path = root / value
        if not path.is_file():
            problems.append(f"{where}: `{key}` names {value}, which does not exist; add it")
            return None
        return kind.load(path, problems, workspace)
    for kind in DETECTION_ORDER:
        found = kind.detect(root)
        if found is not None:
            why = outside(workspace, found, kind.default_file)
            if why:
                problems.append(refusal(kind.default_file, why))
                return None
            return kind.load(found, problems, workspace)
    files = ", ".join(kind.default_file for kind in DETECTION_ORDER)
    problems.append(
        f"codeset {root}: no environment file; add one of {files} at its root, or name one "
        f"in {where} (conda_env / python_env / docker_env)"
    )
    return None

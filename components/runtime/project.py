"""MLflow's own project loader, behind one small adapter (its API is private and moves).

Checks the entry point and its parameters before any run exists, as MLflow 3.17.2 checks them
(`mlflow/projects/_project_spec.py`: `EntryPoint._validate_parameters`,
`Parameter.compute_value`): a missing required parameter, a `uri` value without a scheme and a
local `path` (a plain path or a `file:` URI) that does not exist are errors. This step also
refuses `int`, `float` and `bool` values that do not parse (MLflow passes them on unchecked;
the command would fail later, with a run already made). An undeclared parameter is accepted
and appended to the command as `--name value`, as MLflow does. A codeset without an MLproject
is a project of MLflow's default shape: no entry points but its `.py`/`.sh` scripts.
"""

import contextlib
import os
from urllib.parse import unquote, urlparse

from .inputs import BOOLEAN_WORDS, InputError


def find_mlproject(project_dir):
    """The MLproject file's path, or None: MLflow runs a folder without one by script name."""
    if not os.path.isdir(project_dir):
        raise InputError("codeset {}: not a directory; mount the codeset there".format(project_dir))
    names = [n for n in os.listdir(project_dir) if n.lower() == "mlproject"]
    return os.path.join(project_dir, names[0]) if names else None


class Project(object):
    """What the runtime needs of MLflow's project object, whatever the release calls it.

    `env_type`: MLflow's environment kind (`conda_env`, `python_env`, `docker_env`);
    `has_mlproject`: False for a folder run by script name.
    """

    def __init__(self, name, entry_points, env_type=None, has_mlproject=True, loaded=None):
        self.name = name
        self.entry_points = entry_points  # {name: MLflow EntryPoint (.parameters, .command)}
        self.env_type = env_type
        self.has_mlproject = has_mlproject
        self.loaded = loaded  # MLflow's own Project object


@contextlib.contextmanager
def adapted_loader():
    """Two changes to MLflow's private project loader while the step loads and runs the
    project (MLflow's runner loads it again, through the same module), undone after:

    - `parameters:` with no value (YAML null) is read as no parameters; MLflow 3.17.2
      crashes on it (`'NoneType' object has no attribute 'items'` in EntryPoint.__init__).
    - `docker_env` is dropped, and its `environment` pairs are set as `docker run -e` would:
      the step already runs in the docker_env image (the builder's thin image of it), so
      MLflow's runner must not look for Docker to start another one.
    """
    from mlflow.projects import _project_spec

    entry_point_class = _project_spec.EntryPoint
    load = _project_spec.load_project

    class EntryPoint(entry_point_class):
        def __init__(self, name, parameters, command):
            super(EntryPoint, self).__init__(name, parameters or {}, command)

    def load_project(directory):
        project = load(directory)
        docker_env = getattr(project, "docker_env", None)
        if docker_env:
            for item in docker_env.get("environment") or []:
                if isinstance(item, list) and len(item) == 2:
                    os.environ[str(item[0])] = str(item[1])
            project.docker_env = None
        return project

    _project_spec.EntryPoint = EntryPoint
    _project_spec.load_project = load_project
    try:
        yield
    finally:
        _project_spec.EntryPoint = entry_point_class
        _project_spec.load_project = load


# MLflow's loader reads MLproject with yaml.safe_load, which expands aliases without bound.
MLPROJECT_LIMIT = 4 * 1024 * 1024


def check_mlproject_file(path):
    """A regular file of at most MLPROJECT_LIMIT bytes without YAML aliases, before MLflow
    reads it: a FIFO would block it, a device would be read, nested aliases ("billion
    laughs") take minutes and gigabytes. Syntax errors are left to MLflow's own message."""
    import stat

    import yaml

    name = os.path.basename(path)
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise InputError("{}: is not a regular file (a FIFO or device?); replace it".format(name))
    if info.st_size > MLPROJECT_LIMIT:
        raise InputError("{}: larger than {} bytes; check the file".format(name, MLPROJECT_LIMIT))
    with open(path, "rb") as handle:
        text = handle.read(MLPROJECT_LIMIT + 1)
    try:
        for event in yaml.parse(text):  # events only: nothing is expanded
            if isinstance(event, yaml.AliasEvent):
                raise InputError(
                    "{}: uses the YAML alias *{}, which the step does not read (aliases can "
                    "expand without bound); write the value out in full".format(name, event.anchor)
                )
    except yaml.YAMLError:
        return


def load_project(project_dir):
    mlproject = find_mlproject(project_dir)
    has_mlproject = mlproject is not None
    if has_mlproject:
        check_mlproject_file(mlproject)
    from mlflow.projects import _project_spec

    try:
        loaded = _project_spec.load_project(project_dir)
    except Exception as exc:  # MLflow raises ExecutionException and others, by release
        raise InputError("MLproject: {}".format(exc)) from None
    entry_points = getattr(loaded, "_entry_points", None)
    if entry_points is None:
        entry_points = getattr(loaded, "entry_points", None) or {}
    return Project(
        getattr(loaded, "name", None),
        dict(entry_points),
        getattr(loaded, "env_type", None),
        has_mlproject,
        loaded,
    )


def check_entry_point(project, name, project_dir):
    """The declared entry point `name`, or None for a `.py`/`.sh` script of the codeset (MLflow
    runs it as `python NAME` / `$SHELL NAME`, with every parameter appended as `--k v`)."""
    if name in project.entry_points:
        return project.entry_points[name]
    if name.endswith((".py", ".sh")) and os.path.isfile(os.path.join(project_dir, name)):
        return None  # MLflow runs a script of the codeset as an entry point
    if not project.has_mlproject:
        scripts = sorted(
            n for n in os.listdir(project_dir) if n.endswith((".py", ".sh")) and n[:1] != "."
        )
        raise InputError(
            "codeset {} has no MLproject, so its entry points are its scripts: set "
            "mlflow_entrypoint to one of: {} (got {!r}); or add an MLproject".format(
                project_dir, ", ".join(scripts) or "none (the folder holds no .py/.sh file)", name
            )
        )
    valid = ", ".join(sorted(project.entry_points)) or "none"
    raise InputError(
        "unknown entry point {!r}; the MLproject declares: {} (or name a .py/.sh file of "
        "the codeset)".format(name, valid)
    )


def check_parameters(entry_point, values, project_dir):
    """Values checked against the declared parameters and types; returns them unchanged.
    Undeclared names pass: MLflow appends them to the command as `--name value`."""
    if entry_point is None:
        return values
    declared = entry_point.parameters
    problems = []
    for name in sorted(values):
        if name in declared:
            problem = type_problem(declared[name], values[name], project_dir)
            if problem:
                problems.append(problem)
    for name, param in sorted(declared.items()):
        if param.default is None and name not in values:
            problems.append(
                "parameter {!r} ({}) is required and has no default".format(name, param.type)
            )
    if problems:
        raise InputError("; ".join(problems))
    return values


def type_problem(param, value, project_dir):
    kind = param.type
    try:
        if kind == "int":
            int(value)
        elif kind == "float":
            float(value)
    except ValueError:
        return "parameter {!r} must be {} {}, got {!r}".format(
            param.name, "an" if kind == "int" else "a", kind, value
        )
    if kind in ("bool", "boolean") and str(value).strip().lower() not in BOOLEAN_WORDS:
        return "parameter {!r} must be a boolean (true or false), got {!r}".format(
            param.name, value
        )
    if kind == "uri" and not urlparse(str(value)).scheme:
        # MLflow: `data_utils.is_uri` (a scheme), in `Parameter._compute_uri_value`
        return "parameter {!r} must be a URI with a scheme (s3://, file:///, ...), got {!r}".format(
            param.name, value
        )
    if kind == "path":
        local = local_path(str(value))
        if local is not None:
            if not local.strip():
                return "parameter {!r} must be a non-empty path".format(param.name)
            where = local if os.path.isabs(local) else os.path.join(project_dir, local)
            if not os.path.exists(where):
                return "parameter {!r}: path {!r} does not exist".format(param.name, value)
    return None


def local_path(value):
    """The local path a `path` value names, or None for a URI MLflow downloads: no scheme, or
    `file:` with no host (MLflow's `file_utils.get_local_path_or_none`)."""
    parsed = urlparse(value)
    if not parsed.scheme:
        return value
    if parsed.scheme == "file" and not parsed.netloc:
        return unquote(parsed.path)
    return None

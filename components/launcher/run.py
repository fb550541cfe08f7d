"""`mlflow-steps run`: the runtime step on this machine, in an image or in a local venv."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..builder.build import plan
from ..builder.planning.options import BuildOptions
from ..builder.planning.platforms import parse_platforms, refuse_emulation
from ..builder.reading.environments import DockerEnv
from ..problems import StepError
from ..processes import Finished, failure, run_logged
from ..subprocess_env import keep_environ_private
from . import containers, local_env
from .environment import passed_environment, write_env_file

ENGINES = ("local", "buildah", "docker", "podman")


@dataclass
class RunRequest:
    project: Path
    engine: str
    image: str | None
    runtime_flags: list[str]
    options: BuildOptions


@dataclass(frozen=True)
class RunResult:
    """The runtime step's outputs: `model_url` (the artifact URL) and `model_uri`
    (`models:/<model_id>`, "" before MLflow 3)."""

    model_url: str
    model_uri: str


def run(request: RunRequest, environ: Mapping[str, str], log: Callable[[str], None]) -> RunResult:
    """Run the entry point; returns the outputs the runtime module wrote. In an image, the run
    and its logged models are tagged with the image's reference (MLFLOW_STEPS_IMAGE) and, for
    buildah or a reference by digest, its digest."""
    project = request.project.resolve()
    if request.engine == "local":  # this machine's interpreter: its own platform only
        refuse_emulation(parse_platforms(request.options.platforms), "local")
    passed = passed_environment(environ)
    if request.image:
        passed["MLFLOW_STEPS_IMAGE"] = request.image
    if request.engine != "local":
        if not request.image:
            raise StepError(f"--engine {request.engine} needs --image (the builder's output)")
        if "MLFLOW_TRACKING_URI" not in passed:
            raise StepError(
                "set MLFLOW_TRACKING_URI to a tracking server the container can reach; "
                "without one, runs would be lost with the container"
            )
    with tempfile.TemporaryDirectory(prefix="mlflow-steps-io-") as tmp:
        io_dir = Path(tmp)
        output = io_dir / "output"
        model_uri = io_dir / containers.MODEL_URI_OUTPUT
        if request.engine == "local":
            done = run_local(request, project, passed, output, io_dir, log)
        else:
            write_env_file(io_dir, passed)
            os.chmod(io_dir, 0o755)
            if request.engine == "buildah":
                done = containers.buildah_run(
                    request.image or "",
                    project,
                    io_dir,
                    request.runtime_flags,
                    request.options.insecure,
                )
            else:
                argv = containers.engine_run_argv(
                    request.engine,
                    request.image or "",
                    project,
                    io_dir,
                    request.runtime_flags,
                    request.options.insecure,
                )
                try:
                    done = run_logged(argv)
                except FileNotFoundError:
                    raise StepError(
                        f"--engine {request.engine}: `{request.engine}` is not installed here; "
                        "install it or choose another engine (buildah, podman, docker, local)"
                    ) from None
        what = f"the runtime step ({request.engine} engine)"
        if done.returncode != 0:
            raise StepError(failure(what, done))
        if not output.exists():
            raise StepError(f"{what} ended without writing its output; it said:\n{done.said()}")
        uri = model_uri.read_text().strip() if model_uri.exists() else ""
        return RunResult(output.read_text().strip(), uri)


# What the entry point's process never sees from ours: the tracking settings (they reach it
# through the env file, as the step's inputs), and every credential the builder or the index
# reads (index URLs with their passwords, netrc, registry auth).
HELD_BACK_PREFIXES = ("MLFLOW_", "AWS_", "FUSEML_PIP_", "PIP_", "UV_")
HELD_BACK = {"NETRC", "DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "MLFLOW_STEPS_INDEX_NETRC"}


def held_back(name: str) -> bool:
    return name.startswith(HELD_BACK_PREFIXES) or name in HELD_BACK


def run_local(
    request: RunRequest,
    project: Path,
    passed: dict[str, str],
    output: Path,
    io_dir: Path,
    log: Callable[[str], None],
) -> Finished:
    # Code the codeset brings (its install phase, its entry point) runs as this user: it must
    # not read the credentials this process was started with from /proc/<our pid>/environ.
    keep_environ_private()
    if "MLFLOW_TRACKING_URI" not in passed:
        passed["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path.cwd() / 'mlflow.db'}"
        log(f"MLFLOW_TRACKING_URI not set: using {passed['MLFLOW_TRACKING_URI']}")
    options = request.options
    # A database store is used with the MLflow that owns its schema, never migrated by a newer
    # one: the environment's MLflow addition is pinned to that release.
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        owner = local_env.store_owner(passed.get(name, ""), log)
        if owner:
            options = local_env.pin_mlflow(options, owner)
            log(
                f"{name} is a store of MLflow {owner}'s schema: the environment gets MLflow {owner}"
            )
            break
    the_plan = plan(project, options)
    kind = the_plan.codeset.environment
    if isinstance(kind, DockerEnv):
        where = getattr(the_plan.codeset.mlproject, "name", "MLproject")
        raise StepError(
            f"{where}: a docker_env project (image {kind.image}) runs "
            "in its image, and the local engine runs codesets in a virtual environment of this "
            "machine: build it (`mlflow-steps build`, which adds the runtime step to the image) "
            "and run it with --engine buildah, podman or docker and --image set to the build's "
            "output"
        )
    target = local_env.ensure_local_env(the_plan, options, log)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        if passed.get(name):
            local_env.ensure_store_packages(target, passed[name], options, log)
    env_file = write_env_file(io_dir, passed)
    venv_bin = target / "venv" / "bin"
    env = {k: v for k, v in os.environ.items() if not held_back(k)}
    env.update(
        PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(target / "venv")
    )
    env.pop("PYTHONPATH", None)
    argv = [
        str(venv_bin / "python"),
        "-m",
        "mlflow_steps_runtime",
        str(project),
        "--env-file",
        str(env_file),
        "--output",
        str(output),
        "--model-uri-output",
        str(io_dir / containers.MODEL_URI_OUTPUT),
        *request.runtime_flags,
    ]
    return run_logged(argv, env=env)

"""The `local` engine: the builder's tag names a virtual environment in a local cache.

The environment is built once, by the very scripts the image recipe runs (the download phase
with the index settings, then the install phase without them; uv, pip fallback), and reused
while the tag is unchanged. A `.complete` marker is written last, so an
interrupted build is never reused.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from ..builder.backends.recipe import compile_flag, write_files
from ..builder.build import Plan
from ..builder.planning.indexes import SECRET_ID, secret_files
from ..builder.planning.options import BuildOptions
from ..builder.planning.plan import RUNTIME, STAGING, InstallPlan
from ..builder.reading.requirements import MLFLOW_DISTRIBUTIONS
from ..problems import StepError
from ..processes import Finished, failure, run_logged
from ..runtime import schema, store
from ..subprocess_env import keep_environ_private, minimal_env


def cache_root() -> Path:
    default = Path.home() / ".cache" / "mlflow-steps" / "envs"
    return Path(os.environ.get("MLFLOW_STEPS_ENV_CACHE", default)).absolute()


def interpreter_for(install: InstallPlan) -> str:
    """A venv plan's Python: the version it names (python_env.yaml, conda.yaml with
    env_manager=uv), found by `uv python find`; none named (requirements.txt): this
    machine's Python."""
    if install.installer != "venv":
        raise StepError(
            f"the local engine builds requirements.txt and python_env.yaml environments, and "
            f"conda.yaml with env_manager=uv; this codeset's is {install.kind}: pass "
            "--env-manager uv or run it in an image (--engine buildah, docker or podman)"
        )
    if not install.python:
        return sys.executable
    version = install.python
    # --system and an empty working folder: uv runs the interpreters it considers, and would
    # consider a `.venv` in the working folder (the codeset's) or above it.
    with tempfile.TemporaryDirectory(prefix="mlflow-steps-find-") as empty:
        found = subprocess.run(
            ["uv", "python", "find", "--system", "--no-project", version],
            capture_output=True,
            text=True,
            cwd=empty,
            env=minimal_env(home=os.environ.get("HOME", "/nonexistent")),
        )
    if found.returncode != 0:
        said = found.stderr.strip().splitlines()
        raise StepError(
            f"the {install.kind} environment needs Python {version}, which is not installed "
            f"here ({said[-1] if said else f'uv python find: exit {found.returncode}'}); "
            f"install it (e.g. `uv python install {version}`) or use an image engine"
        )
    return found.stdout.strip()


def store_owner(uri: str, log: Callable[[str], None]) -> str | None:
    """The MLflow release whose schema the database store at `uri` has: this machine's MLflow
    for a store it made (or one not made yet: the user's own MLflow must open what the run
    writes), else the release `schema.HEADS` names for the store's revision; None for a store
    that is no database, that cannot be read here, or whose revision no known release names
    (the runtime then refuses it before a run exists)."""
    if store.scheme_of(uri).partition("+")[0] not in store.DATABASE_ENGINES:
        return None
    try:
        revision = schema.store_revision(uri)
    except Exception as exc:  # no driver here, or the database is down: the runtime checks
        log(f"the tracking store's schema cannot be read here ({exc.__class__.__name__})")
        return None
    host = schema.installed_mlflow()
    if revision is None:
        return host.version if host else None
    return schema.owner_version(revision, host)


def pin_mlflow(options: BuildOptions, version: str) -> BuildOptions:
    """`options` with the MLflow addition (mlflow_requirement) pinned to `version`, where it
    allows that version; a requirement that excludes it is kept (the runtime then refuses)."""
    pinned = []
    for token in options.mlflow_requirement.split():
        try:
            requirement = Requirement(token)
        except InvalidRequirement:
            pinned.append(token)
            continue
        if canonicalize_name(requirement.name) in MLFLOW_DISTRIBUTIONS and (
            requirement.specifier.contains(version, prereleases=True)
        ):
            requirement.specifier = SpecifierSet(f"=={version}")
        pinned.append(str(requirement))
    return replace(options, mlflow_requirement=" ".join(pinned))


def ensure_local_env(the_plan: Plan, options: BuildOptions, log: Callable[[str], None]) -> Path:
    install = the_plan.install
    target = cache_root() / the_plan.tag
    if (target / ".complete").exists():
        log(f"reusing local environment {target} (tag {the_plan.tag})")
        return target
    python = interpreter_for(install)
    if install.system_packages:
        log(
            f"system_packages ({' '.join(install.system_packages)}) are installed in images only; "
            "the local environment uses this machine's libraries"
        )
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"building local environment {target} (tag {the_plan.tag})")
    with tempfile.TemporaryDirectory(prefix="mlflow-steps-local-") as tmp:
        context = Path(tmp)
        write_files(dict(install.files), context, with_uv=True)
        staging = context / STAGING
        runtime_parent = target / "mlflow-steps"
        shutil.copytree(context / RUNTIME, runtime_parent / "mlflow_steps_runtime")
        installs = [s.name for s in install.requirement_sets]
        done = run_phases(
            staging, options, python, str(runtime_parent), str(target / "venv"),
            compile_flag(install.compile_bytecode), installs, home=str(context / "home"),
        )  # fmt: skip
    if done.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise StepError(failure("building the local environment", done))
    if install.lock is not None:  # where the image keeps it, relative to the venv
        (target / "venv" / "pylock.toml").write_bytes(install.lock)
    (target / ".complete").touch()
    return target


def run_phases(staging: Path, options: BuildOptions, python: str, runtime_parent: str,
               venv: str, compile: str, installs: list[str],
               home: str) -> Finished:  # fmt: skip
    """The recipe's two phases on this machine, each in `minimal_env` (no DOCKER_CONFIG,
    netrc or HOME of the user; HOME is the empty folder `home`). The download phase alone
    reads the index settings, from a private file deleted before the install phase starts;
    the install phase builds path and VCS requirements with no credential in reach."""
    Path(home).mkdir(exist_ok=True)
    keep_environ_private()  # the install phase runs as this user: no /proc/<our pid>/environ
    common = {"MLFLOW_STEPS_PYTHON": python, "MLFLOW_STEPS_RUNTIME_PARENT": runtime_parent}
    with secret_files(options.index()) as secrets:
        secret = str(secrets.get(SECRET_ID, ""))
        env = minimal_env({**common, "MLFLOW_STEPS_INDEX_SECRET": secret}, home=home)
        done = run_logged(
            ["sh", str(staging / "download-python-env.sh"), *installs],
            env=env,
            masked=options.index().secret_values(),
        )
    if done.returncode != 0:
        return done
    env = minimal_env({**common, "MLFLOW_STEPS_INDEX_SECRET": ""}, home=home)
    return run_logged(
        ["sh", str(staging / "install-python-env.sh"), venv, compile, *installs],
        env=env,
        masked=options.index().secret_values(),
    )


def ensure_store_packages(
    target: Path, uri: str, options: BuildOptions, log: Callable[[str], None]
) -> None:
    """Add what the tracking store at `uri` needs (SQLAlchemy, Alembic and the driver of a
    database URI), once, when the environment lacks it. The environment itself says what it
    lacks: the driver of `postgresql://` depends on the SQLAlchemy it has."""
    if not store.needs(uri):
        return
    python = str(target / "venv" / "bin" / "python")
    for _ in range(2):  # once more after SQLAlchemy arrives: it decides the default driver
        # The environment's Python, with nothing of ours: its packages' .pth files run here.
        asked = subprocess.run(
            [python, "-m", "mlflow_steps_runtime.store", uri],
            capture_output=True,
            text=True,
            env=minimal_env(),
        )
        if asked.returncode != 0:
            raise StepError(f"the local environment {target} cannot be queried: {asked.stderr}")
        packages = json.loads(asked.stdout)
        if not packages:
            return
        install_packages(python, packages, target, store.scheme_of(uri), options, log)


def venv_python_version(venv: Path) -> str:
    """`major.minor` of the venv's Python, read from its pyvenv.cfg (`version_info`, as uv
    writes it, or `version`, as the venv module does): nothing of the venv is run."""
    for line in (venv / "pyvenv.cfg").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("version_info", "version") and value.strip():
            return ".".join(value.strip().split(".")[:2])
    raise StepError(f"{venv}/pyvenv.cfg names no Python version")


def install_packages(
    python: str,
    packages: list[str],
    target: Path,
    scheme: str,
    options: BuildOptions,
    log: Callable[[str], None],
) -> None:
    log(f"adding {', '.join(packages)} to {target} for the {scheme} tracking store")
    # Two phases, as every install: the wheels are downloaded with the index credentials by
    # this machine's own pip (nothing of the environment runs: its packages' .pth files would,
    # in any interpreter started on it), then installed by uv from that folder alone, with no
    # credential in reach. pip's rule for several indexes: the best version on any of them.
    version = venv_python_version(Path(python).parent.parent)
    with tempfile.TemporaryDirectory(prefix="mlflow-steps-store-") as tmp:
        wheels, home = Path(tmp) / "wheels", Path(tmp) / "home"
        home.mkdir()
        quiet_pip = {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_CACHE_DIR": "1",
                     "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}  # fmt: skip
        # pip in a throwaway venv of this machine's interpreter (ensurepip's own pip: the
        # interpreter mlflow-steps runs in may have none, e.g. a venv uv made).
        downloader = Path(tmp) / "downloader"
        done = run_logged([sys.executable, "-I", "-m", "venv", str(downloader)],
                          env=minimal_env(home=str(home)))  # fmt: skip
        if done.returncode == 0:
            done = run_logged(
                [str(downloader / "bin" / "python"), "-I", "-m", "pip", "download", "--quiet",
                 "--only-binary", ":all:", "--python-version", version, "--dest", str(wheels),
                 *packages],
                env=minimal_env({**options.index().install_env(), **quiet_pip}, home=str(home)),
                masked=options.index().secret_values(),
            )  # fmt: skip
        if done.returncode == 0:
            done = run_logged(
                ["uv", "pip", "install", "-q", "--offline", "--no-index", "--find-links",
                 str(wheels), "--no-config", "--python", python, *packages],
                env=minimal_env({"UV_NO_CACHE": "1"}, home=str(home)),
            )  # fmt: skip
    if done.returncode != 0:
        raise StepError(
            failure(
                f"adding {', '.join(packages)} to the local environment for the {scheme} "
                "tracking store",
                done,
                "Check the index settings. Only wheels are installed here (no package is built "
                "beside the index credentials): for MySQL use a mysql+pymysql:// URI",
            )
        )

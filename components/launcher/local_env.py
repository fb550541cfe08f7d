"""The `local` engine: the builder's tag names a virtual environment in a local cache.

The environment is built once, by the very install script the image recipe runs (uv, pip
fallback), and reused while the tag is unchanged. A `.complete` marker is written last, so an
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
from pathlib import Path

from ..builder.build import Plan
from ..builder.options import BuildOptions
from ..builder.plan import RUNTIME, STAGING, InstallPlan
from ..builder.recipe import compile_flag, write_files
from ..problems import StepError
from ..processes import failure, run_logged
from ..runtime import store


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
    found = subprocess.run(["uv", "python", "find", version], capture_output=True, text=True)
    if found.returncode != 0:
        said = found.stderr.strip().splitlines()
        raise StepError(
            f"the {install.kind} environment needs Python {version}, which is not installed "
            f"here ({said[-1] if said else f'uv python find: exit {found.returncode}'}); "
            f"install it (e.g. `uv python install {version}`) or use an image engine"
        )
    return found.stdout.strip()


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
        # The index settings, credentials included, live in the install process's environment
        # only: nothing is written to a file, the command line or the log.
        env = {
            **os.environ,
            **options.index().install_env(),
            "MLFLOW_STEPS_INDEX_SECRET": "",  # no build secret here: the settings above
            "MLFLOW_STEPS_PYTHON": python,
            "MLFLOW_STEPS_RUNTIME_PARENT": str(runtime_parent),
        }
        done = run_logged(
            [
                "sh",
                str(staging / "install-python-env.sh"),
                str(target / "venv"),
                compile_flag(install.compile_bytecode),
                *installs,
            ],
            env=env,
            masked=options.index().secret_values(),
        )
    if done.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise StepError(failure("building the local environment", done))
    if install.lock is not None:  # where the image keeps it, relative to the venv
        (target / "venv" / "pylock.toml").write_bytes(install.lock)
    (target / ".complete").touch()
    return target


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
        asked = subprocess.run(
            [python, "-m", "mlflow_steps_runtime.store", uri], capture_output=True, text=True
        )
        if asked.returncode != 0:
            raise StepError(f"the local environment {target} cannot be queried: {asked.stderr}")
        packages = json.loads(asked.stdout)
        if not packages:
            return
        install_packages(python, packages, target, store.scheme_of(uri), options, log)


def install_packages(
    python: str,
    packages: list[str],
    target: Path,
    scheme: str,
    options: BuildOptions,
    log: Callable[[str], None],
) -> None:
    log(f"adding {', '.join(packages)} to {target} for the {scheme} tracking store")
    env = dict(os.environ)
    uv_names = {
        "PIP_INDEX_URL": "UV_INDEX_URL",
        "PIP_EXTRA_INDEX_URL": "UV_EXTRA_INDEX_URL",
        "PIP_TRUSTED_HOST": "UV_INSECURE_HOST",
    }
    for name, value in options.index().install_env().items():
        env[uv_names[name]] = value  # credentials in uv's environment only
    done = run_logged(
        ["uv", "pip", "install", "-q", "--python", python, *packages],
        env=env,
        masked=options.index().secret_values(),
    )
    if done.returncode != 0:
        raise StepError(
            failure(
                f"adding {', '.join(packages)} to the local environment for the {scheme} "
                "tracking store",
                done,
                "Check the index settings.",
            )
        )

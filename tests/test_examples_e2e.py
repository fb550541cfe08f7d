"""Every example codeset under examples/ as a user meets it: `mlflow-steps run EXAMPLE`
with its defaults (the local engine, MLflow's default store in the working directory), real
installs from the tests' package index. Its model loads, stdout is the model URL alone, and
the example's folder gets nothing (no mlruns/, no mlflow.db). conda-keras is the seed's conda
example (Python 3.6, TensorFlow 2.0 from conda channels): it builds only into an image with
env_manager=conda, and the local engine says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RUNNABLE = {
    "sklearn-pip": lambda model: model.predict(np.ones((3, 4))).shape == (3,),
    "python-env": lambda model: list(model.predict(["a", "b"])) == ["hello", "hello"],
}
IMAGE_ONLY = {"conda-keras"}


def run_example(name: str, package_index, tmp_path: Path, *flags: str):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_"))}
    env["MLFLOW_STEPS_ENV_CACHE"] = str(tmp_path / "envs")
    index = ["--pip-index-url", package_index.extra["url"]]
    return subprocess.run(
        [sys.executable, "-m", "mlflow_steps", "run", str(EXAMPLES / name), *flags, *index],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
    ), work


def test_every_example_is_covered():
    found = {p.name for p in EXAMPLES.iterdir() if (p / "MLproject").exists()}
    assert found == set(RUNNABLE) | IMAGE_ONLY


@pytest.mark.parametrize("name", sorted(RUNNABLE))
def test_example_runs_with_its_defaults_and_its_model_loads(name, package_index, tmp_path):
    before = sorted((EXAMPLES / name).rglob("*"))
    done, work = run_example(name, package_index, tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    (url,) = done.stdout.splitlines()
    assert url.startswith(f"{work}/mlruns/"), url
    assert sorted((EXAMPLES / name).rglob("*")) == before
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    try:
        assert RUNNABLE[name](mlflow.pyfunc.load_model(url))
    finally:
        mlflow.set_tracking_uri(None)


def test_conda_example_is_refused_by_the_local_engine_with_what_to_do(package_index, tmp_path):
    done, _ = run_example("conda-keras", package_index, tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert "pass --env-manager uv or run it in an image" in done.stderr
    done, _ = run_example("conda-keras", package_index, tmp_path, "--env-manager", "uv")
    assert done.returncode == 1 and done.stdout == ""
    assert "needs Python 3.6" in done.stderr

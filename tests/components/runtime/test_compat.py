"""The module's run-and-resolve logic against one MLflow 1.x, one 2.x and the current 3.x, each
in its own virtual environment (installed with uv from PyPI, cached), with a real SQLite
tracking store. The output must load with that MLflow's `pyfunc.load_model` and predict."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.support.images import CACHE

ROOT = Path(__file__).resolve().parents[3]
VERSIONS = {
    "1.30.1": ["mlflow==1.30.1", "numpy<2", "pandas<2", "scikit-learn<1.4", "setuptools<70"],
    # SQLAlchemy 2.1 removed a pool class that MLflow 2.22 imports.
    "2.22.0": ["mlflow==2.22.0", "scikit-learn", "sqlalchemy<2.1"],
    "3.17.2": ["mlflow==3.17.2", "scikit-learn"],
}


def mlflow_venv(version: str) -> Path:
    venv = CACHE / f"compat-{version}"
    if (venv / ".complete").exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run(["uv", "venv", "-q", "--python", "3.11", str(venv)], check=True)
    subprocess.run(
        ["uv", "pip", "install", "-q", "--python", str(venv / "bin/python"), *VERSIONS[version]],
        check=True,
    )
    (venv / ".complete").touch()
    return venv


@pytest.mark.parametrize("version", list(VERSIONS))
def test_run_and_resolve_on_each_mlflow_line(version, tmp_path):
    venv = mlflow_venv(version)
    runtime = tmp_path / "rt" / "mlflow_steps_runtime"
    shutil.copytree(
        ROOT / "components" / "runtime", runtime, ignore=shutil.ignore_patterns("__pycache__")
    )
    codeset = tmp_path / "codeset"
    shutil.copytree(ROOT / "examples" / "sklearn-pip", codeset)
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(runtime.parent),
        "MLFLOW_TRACKING_URI": tracking,
    }
    python = str(venv / "bin" / "python")
    done = subprocess.run(
        [
            python,
            "-m",
            "mlflow_steps_runtime",
            str(codeset),
            "--entrypoint-args",
            "alpha=0.2,max_iter=300",
            "--output",
            str(tmp_path / "url"),
            "--model-uri-output",
            str(tmp_path / "model-uri"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    url = (tmp_path / "url").read_text()
    assert done.stdout.strip().endswith(url)
    check = subprocess.run(
        [
            python,
            "-c",
            "import sys, mlflow, numpy as np; "
            f"mlflow.set_tracking_uri({tracking!r}); "
            "print(mlflow.__version__, float(mlflow.pyfunc.load_model(sys.argv[1])"
            ".predict(np.ones((1, 4)))[0]))",
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
    )
    assert check.returncode == 0, check.stderr[-2000:]
    installed, prediction = check.stdout.split()
    assert installed.startswith(version.split(".")[0] + ".")
    assert abs(float(prediction)) > 0.1  # a fitted ElasticNet, not a placeholder
    assert os.path.isabs(url) or ":" in url

    # The run as that release's `mlflow run` records it: every parameter, the project's tags;
    # the models:/ URI only where logged models exist (MLflow 3).
    recorded = subprocess.run(
        [
            python,
            "-c",
            "import json, sys, mlflow; "
            f"mlflow.set_tracking_uri({tracking!r}); "
            "client = mlflow.tracking.MlflowClient(); "
            "e = client.get_experiment_by_name('sklearn_elasticnet'); "
            "r = client.search_runs([e.experiment_id])[0]; "
            "print(json.dumps([r.info.status, r.data.params, r.data.tags]))",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
    )
    assert recorded.returncode == 0, recorded.stderr[-2000:]
    status, params, tags = json.loads(recorded.stdout.strip().splitlines()[-1])
    assert status == "FINISHED"
    assert params == {"alpha": "0.2", "l1_ratio": "0.1", "max_iter": "300"}
    assert tags["mlflow.source.type"] == "PROJECT" and tags["mlflow.project.entryPoint"] == "main"
    assert tags["mlflow.project.backend"] == "local" and tags["mlflow.source.name"] == str(codeset)
    model_uri = (tmp_path / "model-uri").read_text()
    if version.startswith("3"):
        assert model_uri.startswith("models:/m-")
    else:
        assert model_uri == ""


def store_state(path: Path) -> tuple[str, int]:
    with sqlite3.connect(path) as db:
        revision = db.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        return revision, db.execute("SELECT count(*) FROM runs").fetchone()[0]


@pytest.mark.parametrize(
    "made_by, run_with, words",
    [
        ("2.22.0", "3.17.2", ["older than", "mlflow db upgrade", "mlflow-skinny==2.22.0"]),
        ("3.17.2", "1.30.1", ["does not know", "the store is newer"]),
    ],
)
def test_a_store_another_mlflow_made_is_refused_and_left_as_it_was(
    made_by, run_with, words, tmp_path
):
    """The runtime as it runs in an image: a SQLite store made by one MLflow line, a run in
    another's environment: refused before a run exists, naming both releases; the store keeps
    its revision (no migration) and holds no run."""
    store = tmp_path / "mlflow.db"
    tracking = f"sqlite:///{store}"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MLFLOW_TRACKING_URI": tracking}
    made = subprocess.run(
        [str(mlflow_venv(made_by) / "bin" / "python"), "-c",
         "from mlflow.tracking import MlflowClient; MlflowClient().search_experiments()"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr[-2000:]
    before = store_state(store)
    runtime = tmp_path / "rt" / "mlflow_steps_runtime"
    shutil.copytree(
        ROOT / "components" / "runtime", runtime, ignore=shutil.ignore_patterns("__pycache__")
    )
    done = subprocess.run(
        [str(mlflow_venv(run_with) / "bin" / "python"), "-m", "mlflow_steps_runtime",
         str(ROOT / "examples" / "sklearn-pip")],
        capture_output=True, text=True, env={**env, "PYTHONPATH": str(runtime.parent)},
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert made_by in done.stderr and f"MLflow {run_with}" in done.stderr
    assert all(word in done.stderr for word in words), done.stderr
    assert "running entry point" not in done.stderr
    assert store_state(store) == before and before[1] == 0

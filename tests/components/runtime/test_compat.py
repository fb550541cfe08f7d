"""The module's run-and-resolve logic against one MLflow 1.x, one 2.x and the current 3.x, each
in its own virtual environment (installed with uv from PyPI, cached), with a real SQLite
tracking store. The output must load with that MLflow's `pyfunc.load_model` and predict."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.images import CACHE

ROOT = Path(__file__).resolve().parents[3]
VERSIONS = {
    "1.30.1": ["mlflow==1.30.1", "numpy<2", "pandas<2", "scikit-learn<1.4", "setuptools<70"],
    # SQLAlchemy 2.1 removed a pool class that MLflow 2.22 imports.
    "2.22.0": ["mlflow==2.22.0", "scikit-learn", "sqlalchemy<2.1"],
    "3.18.0": ["mlflow==3.18.0", "scikit-learn"],
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

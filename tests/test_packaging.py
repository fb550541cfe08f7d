"""Both an editable install and a wheel install import under the project's own namespace,
and neither installs a bare top-level `components`/`generators` package."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECK = (
    "import importlib.util, mlflow_steps.components.builder.build, mlflow_steps.generators, "
    "mlflow_steps.pipelines, mlflow_steps.components.runtime; "
    "from mlflow_steps.components.builder.plan import runtime_files, recipe_file; "
    "assert runtime_files() and recipe_file('install-python-env.sh'); "
    "assert importlib.util.find_spec('components') is None; "
    "assert importlib.util.find_spec('generators') is None; "
    "print(mlflow_steps.components.__file__)"
)


def make_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=False, system_site_packages=True).create(path)
    return path / "bin" / "python"


@pytest.mark.parametrize("mode", ["editable", "wheel"])
def test_install_imports_under_the_namespace(tmp_path, mode):
    python = make_venv(tmp_path / "venv")
    if mode == "editable":
        target = ["-e", str(ROOT)]
    else:
        subprocess.run(
            ["uv", "build", "--wheel", "-q", "-o", str(tmp_path / "dist"), str(ROOT)], check=True
        )
        target = [str(next((tmp_path / "dist").glob("mlflow_steps-*.whl")))]
    subprocess.run(
        ["uv", "pip", "install", "--python", str(python), "--no-deps", "-q", *target], check=True
    )
    done = subprocess.run([str(python), "-c", CHECK], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    location = Path(done.stdout.strip())
    if mode == "editable":
        assert location == ROOT / "components" / "__init__.py"
    else:
        assert "site-packages/mlflow_steps/components" in str(location)
    cli = subprocess.run(
        [str(python), "-m", "mlflow_steps", "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert cli.stdout.strip().startswith("mlflow-steps ")

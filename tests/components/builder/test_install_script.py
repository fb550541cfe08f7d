"""The install script's pip fallback (no uv in the context), run for real on this host against
the local package index, as it runs inside a base image without uv or with Python < 3.8."""

from __future__ import annotations

import shutil
import subprocess

from mlflow_steps.components.builder.recipe import recipe_file


def test_pip_fallback_installs_from_the_index_and_keeps_no_cache(package_index, tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    for name in ("install-python-env.sh", "check-libraries.py"):
        (staging / name).write_bytes(recipe_file(name))
    (staging / "requirements.txt").write_text("six==1.16.0\n")
    venv = tmp_path / "venv"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PIP_INDEX_URL": package_index.extra["url"],
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_CONFIG_FILE": "/dev/null",
    }
    done = subprocess.run(
        [
            "sh",
            str(staging / "install-python-env.sh"),
            str(venv),
            "--no-compile-bytecode",
            "requirements.txt",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "installing with pip" in done.stdout
    check = subprocess.run(
        [str(venv / "bin/python"), "-c", "import six; print(six.__version__)"],
        capture_output=True,
        text=True,
    )
    assert check.stdout.strip() == "1.16.0"
    assert not (tmp_path / ".cache" / "pip").exists()
    pth = list(venv.glob("lib/python3*/site-packages/mlflow_steps_runtime.pth"))
    assert pth and pth[0].read_text().strip() == "/opt/mlflow-steps"
    assert shutil.which("uv") is None or "uv" not in done.stdout.split()

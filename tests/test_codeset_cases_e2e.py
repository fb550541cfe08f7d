"""The codeset cases (tests/cases: the shapes of MLflow's and FuseML's example projects), all
real: each is built with buildah against the local index on the Debian minbase image (no
`python` command, PEP 668 Python, no libgomp), run in its image and with the local engine
against the real tracking server, and its model is loaded from the output URL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

from mlflow_steps.components.builder.oci.registry import RegistryClient
from tests.support.builds import build_with_cli
from tests.support.images import BUILDAH_ENV, push_derived_image

pytestmark = pytest.mark.e2e
CASES = Path(__file__).resolve().parent / "cases"

# case -> (builder flags, entry point args, parameters the run must record)
CASE_RUNS = {
    "python-env-no-python": (
        [],
        "alpha=0.2,fit_intercept=false,label=hello",
        {"label_seen": "hello", "intercept_seen": "False"},
    ),
    "conda-defaults": (["--env-manager", "uv"], "alpha=0.1", {"alpha": "0.1"}),
    "conda-pinned": (["--env-manager", "uv"], "", {"numpy": None}),
    "lightgbm-libgomp": (["--system-packages", "libgomp1"], "rounds=5", {"rounds": "5"}),
    # -c constraints.txt holds six at 1.16.0 (1.17.0 is on the index); ./vendor/greet is a
    # package inside the codeset, shipped into the build and installed from there.
    "requirement-forms": ([], "alpha=0.3", {"six": "1.16.0", "greet": "hello from vendor/greet"}),
}


def mlflow_steps(*argv: str, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlflow_steps", *argv],
        capture_output=True,
        text=True,
        env={**BUILDAH_ENV, **(env or os.environ)},
        cwd=cwd,
    )


def assert_model_loads(url: str) -> None:
    model = mlflow.pyfunc.load_model(url)
    prediction = np.asarray(model.predict(np.ones((3, 4)))).reshape(-1)
    assert prediction.shape == (3,) and np.isfinite(prediction).all()


def assert_run_params(experiment_name: str, expected: dict[str, str | None]) -> None:
    experiment = mlflow.get_experiment_by_name(experiment_name)
    runs = mlflow.search_runs([experiment.experiment_id], output_format="list")
    assert len(runs) == 1
    for name, value in expected.items():
        assert name in runs[0].data.params
        assert value is None or runs[0].data.params[name] == value


@pytest.mark.parametrize("case", sorted(CASE_RUNS))
def test_case_builds_and_runs_in_its_image_and_locally(
    case, registry, package_index, base_images, mlflow_env, tmp_path, monkeypatch
):
    flags, entry_args, params = CASE_RUNS[case]
    codeset = CASES / case
    image_file = tmp_path / "image"
    built = build_with_cli(
        codeset, registry, package_index, base_images["debian"], image_file, *flags
    )
    assert built.returncode == 0, built.stderr[-4000:]
    image = image_file.read_text()

    url_file = tmp_path / "in-image-url"
    ran = mlflow_steps(
        "run", str(codeset), "--image", image, "--engine", "buildah", "--insecure",
        "--experiment", f"case-{case}", "--entrypoint-args", entry_args,
        "--output", str(url_file),
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-4000:]
    assert_model_loads(url_file.read_text())
    assert_run_params(f"case-{case}", params)

    monkeypatch.setenv("MLFLOW_STEPS_ENV_CACHE", str(tmp_path / "envs"))
    local_url = tmp_path / "local-url"
    local = mlflow_steps(
        "run", str(codeset), "--engine", "local", "--pip-index-url", package_index.extra["url"],
        "--experiment", f"case-{case}-local", "--entrypoint-args", entry_args,
        "--output", str(local_url), *flags,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr[-4000:]
    assert "building local environment" in local.stderr
    assert_model_loads(local_url.read_text())
    assert_run_params(f"case-{case}-local", params)


def test_docker_env_runs_in_a_thin_image_of_its_own_image(
    sklearn_build, registry, package_index, base_images, mlflow_env, tmp_path
):
    """The user's docker_env image has Python and MLflow but not the runtime step (the sklearn
    image with it removed): the builder adds the step's module in a thin image, which runs the
    entry point (`parameters:` with no value, docker_env's `environment`) in place."""
    _, sklearn_image, _ = sklearn_build
    plain = push_derived_image(
        sklearn_image,
        "rm -rf /opt/mlflow-steps /opt/mlflow-env/lib/python3*/site-packages/"
        "mlflow_steps_runtime.pth && ! python -c 'import mlflow_steps_runtime' 2>/dev/null",
        f"{registry.host}/docker-env/plain:1",
    )
    codeset = tmp_path / "codeset"
    shutil.copytree(CASES / "docker-env", codeset)
    mlproject = codeset / "MLproject"
    mlproject.write_text(mlproject.read_text().replace("docker-env/plain:1", plain))
    image_file = tmp_path / "image"
    built = build_with_cli(codeset, registry, package_index, base_images["debian"], image_file)
    assert built.returncode == 0, built.stderr[-4000:]
    image = image_file.read_text()
    assert image != plain and image.startswith(f"{registry.host}/e2e/trainer:")
    url_file = tmp_path / "url"
    ran = mlflow_steps(
        "run", str(codeset), "--image", image, "--engine", "buildah", "--insecure",
        "--experiment", "case-docker-env", "--output", str(url_file),
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-4000:]
    assert_model_loads(url_file.read_text())
    assert_run_params("case-docker-env", {"greeting": "hello from docker_env"})


def test_python_env_without_python_uses_the_base_images_python_and_says_so(registry):
    done = mlflow_steps("inspect", str(CASES / "python-env-no-python"), "--base-image", "my/base:1")
    assert done.returncode == 0, done.stderr
    assert "names no Python version: the base image's own Python is used" in done.stdout
    assert "parameter `note` has type `text`" in done.stdout
    default = mlflow_steps("inspect", str(CASES / "python-env-no-python"))
    assert "base image:   python:3.11" in default.stdout
    assert "using Python 3.11 (the python_version input)" in default.stdout
    other = mlflow_steps("inspect", str(CASES / "python-env-no-python"), "--python-version", "3.12")
    assert "base image:   python:3.12" in other.stdout


def test_missing_system_library_fails_the_build_before_anything_is_pushed(
    registry, package_index, base_images, tmp_path
):
    codeset = CASES / "lightgbm-libgomp"
    out = tmp_path / "image"
    done = build_with_cli(codeset, registry, package_index, base_images["debian"], out)
    assert done.returncode != 0
    assert "libgomp.so.1, needed by lightgbm/lib/lib_lightgbm.so (package lightgbm)" in done.stderr
    assert 'add system_packages="libgomp1"' in done.stderr
    assert not out.exists() and not Path(f"{out}.digest").exists()
    plan = mlflow_steps(
        "inspect", str(codeset), "--registry", registry.host, "--insecure", "--base-image",
        base_images["debian"], "--pip-index-url", package_index.extra["url"],
    )  # fmt: skip
    tag = next(line.split()[-1] for line in plan.stdout.splitlines() if line.startswith("tag:"))
    assert RegistryClient(registry.host, insecure=True).manifest_digest("e2e/trainer", tag) is None


def test_system_packages_on_a_base_without_apt_get_is_a_clear_error(
    registry, package_index, base_images, tmp_path
):
    """A base without apt-get: the Debian base with apt-get removed, built here."""
    base = push_derived_image(
        base_images["debian"], "rm -f /usr/bin/apt-get", f"{registry.host}/base/no-apt:1"
    )
    out = tmp_path / "image"
    done = build_with_cli(
        CASES / "python-env-no-python", registry, package_index, base, out,
        "--system-packages", "libgomp1",
    )  # fmt: skip
    assert done.returncode != 0
    assert "installed with apt-get, which the base image does not have" in done.stderr
    assert not out.exists()

"""Runs recorded as `mlflow run` records them (issue 25 section 3) and models that name their
image (issue 26 item 4), all real: the tracking server (artifacts on the S3 server), the local
engine's environment from the test index, buildah and the registry for the image run. Each
case is also run with the host's real `mlflow run --env-manager local` (MLflow 3.x), and the
parameters and tags of the two runs are compared."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

from tests.support.builds import build_with_cli
from tests.support.images import BUILDAH_ENV

pytestmark = pytest.mark.e2e
CASES = Path(__file__).resolve().parent / "cases"
# Tags only the step sets: MLflow names each run at random; `mlflow run --env-manager local`
# records no mlflow.project.env; the image tags exist only for a run in an image.
STEP_ONLY = {
    "mlflow.runName",
    "mlflow.project.env",
    "mlflow_steps.image",
    "mlflow_steps.image.digest",
}


@pytest.fixture(scope="module")
def env_cache(tmp_path_factory) -> Path:
    """One local-environment cache for the module: each case's venv is built once."""
    return tmp_path_factory.mktemp("envs")


def git_checkout(source: Path, target: Path) -> str:
    """`source` copied into a fresh git repository with a remote whose URL holds a credential;
    returns the commit."""
    subprocess.run(["cp", "-r", str(source), str(target)], check=True)
    git = ["git", "-C", str(target), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "case"], check=True)
    remote = "https://someone:s3cret@git.example.com/org/run-record.git"
    subprocess.run([*git, "remote", "add", "origin", remote], check=True)
    return subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def mlflow_steps(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlflow_steps", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **BUILDAH_ENV, **(env or {})},
    )


def run_locally(codeset: Path, index, cache: Path, tmp: Path, experiment: str, *flags: str):
    """`mlflow-steps run --engine local`: (process, model URL file, model URI file)."""
    url, uri = tmp / f"{experiment}.url", tmp / f"{experiment}.uri"
    done = mlflow_steps(
        "run", str(codeset), "--engine", "local", "--pip-index-url", index.extra["url"],
        "--experiment", experiment, "--output", str(url), "--model-uri-output", str(uri), *flags,
        env={"MLFLOW_STEPS_ENV_CACHE": str(cache)},
    )  # fmt: skip
    return done, url, uri


def mlflow_run(codeset: Path, experiment: str, entry_point: str, params: dict[str, str]):
    """The host's own `mlflow run --env-manager local` (MLflow 3.x)."""
    pairs = [arg for key, value in params.items() for arg in ("-P", f"{key}={value}")]
    return subprocess.run(
        [
            sys.executable, "-m", "mlflow", "run", str(codeset), "--env-manager", "local",
            "--experiment-name", experiment, "-e", entry_point, *pairs,
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip


def runs_of(experiment: str):
    found = mlflow.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    return mlflow.search_runs([found.experiment_id], output_format="list")


def only_run(experiment: str):
    runs = runs_of(experiment)
    assert len(runs) == 1, [r.info.status for r in runs]
    return runs[0]


def comparable_tags(run) -> dict[str, str]:
    return {k: v for k, v in run.data.tags.items() if k not in STEP_ONLY}


def assert_loads(uri: str) -> None:
    model = mlflow.sklearn.load_model(uri)
    prediction = np.asarray(model.predict(np.ones((2, 4)))).reshape(-1)
    assert prediction.shape == (2,) and np.isfinite(prediction).all()


def test_a_run_records_the_params_and_tags_mlflow_run_records(
    package_index, mlflow_env, env_cache, tmp_path
):
    codeset = tmp_path / "run-record"
    commit = git_checkout(CASES / "run-record", codeset)
    # a float, a `path` given as a file: URI (MLflow accepts it), an undeclared parameter,
    # and defaults for the int, the uri and the string with a space (MLflow quotes it)
    params = {"alpha": "0.2", "data": (codeset / "data.csv").as_uri(), "seed": "7"}
    ours, url, uri = run_locally(
        codeset, package_index, env_cache, tmp_path, "ours",
        "--entrypoint-args", " ".join(f"{k}={v}" for k, v in params.items()),
    )  # fmt: skip
    assert ours.returncode == 0, ours.stderr[-4000:]
    theirs = mlflow_run(codeset, "theirs", "main", params)
    assert theirs.returncode == 0, theirs.stderr[-4000:]

    mine, reference = only_run("ours"), only_run("theirs")
    assert mine.info.status == reference.info.status == "FINISHED"
    assert mine.data.params == reference.data.params
    assert mine.data.params["label"] == "'two words'" and mine.data.params["seed"] == "7"
    assert comparable_tags(mine) == comparable_tags(reference)
    tags = mine.data.tags
    assert tags["mlflow.source.git.commit"] == commit
    assert tags["mlflow.source.git.repoURL"] == "https://git.example.com/org/run-record.git"
    assert tags["mlflow.source.type"] == "PROJECT" and tags["mlflow.project.backend"] == "local"
    assert tags["mlflow.project.entryPoint"] == "main" and tags["undeclared_seen"] == "--seed 7"
    assert tags["mlflow.project.env"] == "virtualenv"  # what `mlflow run` records by default

    model_uri = uri.read_text()
    assert model_uri.startswith("models:/m-"), model_uri
    assert_loads(model_uri)
    assert_loads(url.read_text())


def test_bad_values_leave_no_running_run(package_index, mlflow_env, env_cache, tmp_path):
    """A `uri` without a scheme is refused before any run exists; a command MLflow cannot
    form (a placeholder no parameter fills) fails after the run exists and ends it FAILED."""
    codeset = CASES / "run-record"
    bad_uri, _, _ = run_locally(
        codeset, package_index, env_cache, tmp_path, "bad-uri",
        "--entrypoint-args", "source=not-a-uri",
    )  # fmt: skip
    assert bad_uri.returncode != 0
    assert "parameter 'source' must be a URI with a scheme" in bad_uri.stderr
    experiment = mlflow.get_experiment_by_name("bad-uri")
    assert experiment is None or runs_of("bad-uri") == []

    broken, url, _ = run_locally(
        codeset, package_index, env_cache, tmp_path, "broken", "--entrypoint", "broken"
    )
    assert broken.returncode != 0 and not url.exists()
    assert [run.info.status for run in runs_of("broken")] == ["FAILED"]


def test_a_folder_without_mlproject_runs_by_script_name_as_mlflow_runs_it(
    registry, package_index, base_images, mlflow_env, env_cache, tmp_path
):
    codeset = tmp_path / "script-no-mlproject"  # outside this repository's checkout
    shutil.copytree(CASES / "script-no-mlproject", codeset)
    ours, _, _ = run_locally(
        codeset, package_index, env_cache, tmp_path, "script-ours",
        "--entrypoint", "train.py", "--entrypoint-args", "alpha=0.3",
    )  # fmt: skip
    assert ours.returncode == 0, ours.stderr[-4000:]
    theirs = mlflow_run(codeset, "script-theirs", "train.py", {"alpha": "0.3"})
    assert theirs.returncode == 0, theirs.stderr[-4000:]
    mine, reference = only_run("script-ours"), only_run("script-theirs")
    assert mine.data.params == reference.data.params == {"alpha": "0.3"}
    assert comparable_tags(mine) == comparable_tags(reference)
    assert mine.data.tags["mlflow.project.entryPoint"] == "train.py"

    # The same folder, built by the builder and run in its image: the run and its logged
    # model name the image and its digest.
    out = tmp_path / "image"
    built = build_with_cli(codeset, registry, package_index, base_images["debian"], out)
    assert built.returncode == 0, built.stderr[-4000:]
    image, digest = out.read_text(), Path(f"{out}.digest").read_text().strip()
    uri_file = tmp_path / "in-image.uri"
    ran = mlflow_steps(
        "run", str(codeset), "--image", image, "--engine", "buildah", "--insecure",
        "--experiment", "script-image", "--entrypoint", "train.py",
        "--entrypoint-args", "alpha=0.3", "--model-uri-output", str(uri_file),
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-4000:]
    run = only_run("script-image")
    assert run.data.tags["mlflow_steps.image"] == image
    assert run.data.tags["mlflow_steps.image.digest"] == digest and digest.startswith("sha256:")
    model_uri = uri_file.read_text()
    assert model_uri.startswith("models:/m-"), model_uri
    model = mlflow.MlflowClient().get_logged_model(model_uri.split("/", 1)[1].lstrip("/"))
    assert model.tags["mlflow_steps.image.digest"] == digest
    assert model.tags["mlflow_steps.image"] == image
    assert_loads(model_uri)

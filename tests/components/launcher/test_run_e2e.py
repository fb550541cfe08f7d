"""`mlflow-steps run`, all real: an MLflow tracking server (SQLite backend, artifacts proxied to
an S3-compatible server on 127.0.0.1), the entry point run in the built image with buildah and
in the `local` engine's cached venv; the model is loaded from the output URL on the host."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from mlflow_steps.components.runtime import schema
from mlflow_steps.stack import images
from tests.support import services
from tests.support.images import BUILDAH_ENV

pytestmark = pytest.mark.e2e


def mlflow_steps_run(codeset: Path, out: Path, *flags: str, cwd: Path | None = None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "mlflow_steps", "run", str(codeset), "--output", str(out), *flags],
        capture_output=True,
        text=True,
        env={**BUILDAH_ENV, **(env or os.environ)},
        cwd=cwd,
    )


def local_engine(package_index) -> list[str]:
    """The flags of a local-engine run against the test index."""
    return ["--engine", "local", "--pip-index-url", package_index.extra["url"]]


def assert_loadable_model(url: str) -> None:
    model = mlflow.pyfunc.load_model(url)
    prediction = model.predict(np.ones((3, 4)))
    assert prediction.shape == (3,) and abs(float(prediction[0])) > 0.1


def test_run_in_the_built_image_with_buildah(sklearn_build, mlflow_env, tmp_path):
    codeset, image, _ = sklearn_build
    out = tmp_path / "model-url"
    done = mlflow_steps_run(
        codeset,
        out,
        "--image",
        image,
        "--engine",
        "buildah",
        "--insecure",
        "--experiment",
        "e2e-image",
        "--entrypoint-args",
        "alpha=0.1",
    )
    assert done.returncode == 0, done.stderr[-4000:]
    url = out.read_text()
    assert url.startswith("mlflow-artifacts:") and done.stdout == url + "\n"  # stdout: the URL
    assert "Running command 'python train.py --alpha 0.1" in done.stderr
    assert_loadable_model(url)
    experiment = mlflow.get_experiment_by_name("e2e-image")
    runs = mlflow.search_runs([experiment.experiment_id], output_format="list")
    assert len(runs) == 1 and runs[0].data.params["alpha"] == "0.1"


def test_run_with_the_local_engine_reuses_its_environment(
    package_index, mlflow_env, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLFLOW_STEPS_ENV_CACHE", str(tmp_path / "envs"))
    codeset = Path(__file__).resolve().parents[3] / "examples" / "sklearn-pip"
    flags = [
        *local_engine(package_index),
        "--experiment",
        "e2e-local",
    ]
    first = mlflow_steps_run(codeset, tmp_path / "url1", *flags)
    assert first.returncode == 0, first.stderr[-4000:]
    assert "building local environment" in first.stderr
    assert_loadable_model((tmp_path / "url1").read_text())
    second = mlflow_steps_run(codeset, tmp_path / "url2", *flags, "--entrypoint-args", "alpha=0.9")
    assert second.returncode == 0, second.stderr[-4000:]
    assert "reusing local environment" in second.stderr
    assert (tmp_path / "url2").read_text() != (tmp_path / "url1").read_text()
    assert len(list((tmp_path / "envs").iterdir())) == 1


def test_local_engine_defaults_to_sqlite_in_the_working_directory(
    package_index, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLFLOW_STEPS_ENV_CACHE", str(tmp_path / "envs"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING", "AWS_"))}
    work = tmp_path / "work"
    work.mkdir()
    codeset = Path(__file__).resolve().parents[3] / "examples" / "sklearn-pip"
    before = sorted(codeset.rglob("*"))
    done = mlflow_steps_run(
        codeset,
        tmp_path / "url",
        *local_engine(package_index),
        cwd=work,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert (work / "mlflow.db").exists()
    # The store's default artifact root is the working directory's ./mlruns; the codeset
    # folder gets nothing (no mlruns/, no mlflow.db); stdout is the URL alone.
    url = (tmp_path / "url").read_text()
    assert url.startswith(f"{work}/mlruns/") and done.stdout == url + "\n", done.stdout
    assert sorted(codeset.rglob("*")) == before
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    try:
        assert_loadable_model((tmp_path / "url").read_text())
    finally:
        mlflow.set_tracking_uri(None)


def test_image_run_without_tracking_server_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    codeset = Path(__file__).resolve().parents[3] / "examples" / "sklearn-pip"
    done = mlflow_steps_run(codeset, tmp_path / "url", "--image", "x/y:z", "--engine", "buildah")
    assert done.returncode != 0 and "set MLFLOW_TRACKING_URI" in done.stderr
    assert not (tmp_path / "url").exists()


@pytest.fixture(params=["sqlite", "postgresql"])
def user_store(request, tmp_path):
    """The user's own tracking store: a SQLite file, or a real PostgreSQL (Debian's)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'own.db'}"
    return request.getfixturevalue("postgres").extra["url"]


def test_local_engine_adds_what_the_users_own_store_needs(
    package_index, user_store, tmp_path, monkeypatch
):
    """An mlflow-skinny codeset against a database URI the user sets: SQLAlchemy, Alembic and
    the URI's driver are added to the local environment, and the run lands in that store."""
    import shutil

    monkeypatch.setenv("MLFLOW_STEPS_ENV_CACHE", str(tmp_path / "envs"))
    codeset = tmp_path / "codeset"
    shutil.copytree(Path(__file__).resolve().parents[3] / "examples" / "sklearn-pip", codeset)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING", "AWS_"))}
    env["MLFLOW_TRACKING_URI"] = user_store
    done = mlflow_steps_run(
        codeset,
        tmp_path / "url",
        *local_engine(package_index),
        "--experiment",
        "own-store",
        env=env,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    scheme = user_store.split(":")[0]
    assert f"for the {scheme} tracking store" in done.stderr
    if scheme == "postgresql":
        assert "psycopg[binary]" in done.stderr  # SQLAlchemy 2.1's driver for postgresql://
    mlflow.set_tracking_uri(user_store)
    try:
        experiment = mlflow.get_experiment_by_name("own-store")
        runs = mlflow.search_runs([experiment.experiment_id], output_format="list")
        assert len(runs) == 1 and runs[0].info.status == "FINISHED"
        assert_loadable_model((tmp_path / "url").read_text())
    finally:
        mlflow.set_tracking_uri(None)


@pytest.fixture
def made_store(request, tmp_path):
    """A store this machine's MLflow made (tables created, stamped at its head): a SQLite file,
    or a fresh database in the real PostgreSQL."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'made.db'}"
    else:
        server = request.getfixturevalue("postgres")
        host, port = server.host.split(":")
        name = f"made_{tmp_path.name[-20:].replace('-', '_').lower()}"
        createdb = str(services.POSTGRES_BIN / "createdb")
        subprocess.run([createdb, "-h", host, "-p", port, "-U", "mlflow", name], check=True)
        uri = f"postgresql://mlflow@{server.host}/{name}"
    MlflowClient(tracking_uri=uri).search_experiments()
    return uri


def revision_and_runs(uri: str) -> tuple[str, int]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.connect() as db:
            revision = db.execute(sqlalchemy.text("SELECT version_num FROM alembic_version"))
            runs = db.execute(sqlalchemy.text("SELECT count(*) FROM runs"))
            return revision.scalar_one(), runs.scalar_one()
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def shared_envs(tmp_path_factory):
    """One local-environment cache for the tests below: each MLflow's environment is built once."""
    return tmp_path_factory.mktemp("envs")


@pytest.mark.parametrize("made_store", ["sqlite", "postgresql"], indirect=True)
def test_a_run_never_migrates_the_users_store(
    package_index, made_store, shared_envs, tmp_path, monkeypatch
):
    """The index serves MLflow PINNED_MLFLOW (what an unpinned environment gets) and this machine's:
    the environment for a store this machine's MLflow made gets this machine's MLflow, and the
    store keeps its revision. An environment pinned to another MLflow is refused before a run
    exists, naming both releases and `mlflow db upgrade`, and the store is left as it was."""
    monkeypatch.setenv("MLFLOW_STEPS_ENV_CACHE", str(shared_envs))
    host = schema.installed_mlflow()
    assert host is not None
    before = revision_and_runs(made_store)
    assert before == (host.head, 0)
    codeset = Path(__file__).resolve().parents[3] / "examples" / "sklearn-pip"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_"))}
    env["MLFLOW_TRACKING_URI"] = made_store
    flags = [*local_engine(package_index), "--experiment", "kept"]
    done = mlflow_steps_run(codeset, tmp_path / "url", *flags, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"the environment gets MLflow {host.version}" in done.stderr
    assert "Updating database tables" not in done.stderr
    assert revision_and_runs(made_store) == (host.head, 1)
    if host.version == images.PINNED_MLFLOW:
        pytest.skip(f"this machine's MLflow is the index's other one ({images.PINNED_MLFLOW})")
    other = f"mlflow-skinny=={images.PINNED_MLFLOW}"
    refused = mlflow_steps_run(
        codeset, tmp_path / "url2", *flags, "--mlflow-requirement", other, env=env
    )
    assert refused.returncode != 0 and not (tmp_path / "url2").exists()
    assert f"MLflow {host.version}" in refused.stderr
    assert f"MLflow {images.PINNED_MLFLOW}" in refused.stderr
    assert "mlflow db upgrade" in refused.stderr and "running entry point" not in refused.stderr
    assert revision_and_runs(made_store) == (host.head, 1)  # no run, no migration


def test_image_that_cannot_serve_a_database_store_says_what_is_missing(sklearn_build, tmp_path):
    """The image has mlflow-skinny only: a PostgreSQL URI is refused before any run starts,
    naming the packages, and the URI's password is never printed."""
    codeset, image, _ = sklearn_build
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_"))}
    env["MLFLOW_TRACKING_URI"] = "postgresql://alice:pg-s3cret@127.0.0.1:9/mlflow"
    done = mlflow_steps_run(
        codeset, tmp_path / "url", "--image", image, "--engine", "buildah", "--insecure", env=env
    )
    assert done.returncode != 0 and not (tmp_path / "url").exists()
    assert (
        "MLFLOW_TRACKING_URI is a postgresql database, and this environment lacks "
        "sqlalchemy, alembic, psycopg[binary]" in done.stderr
    )
    assert "pg-s3cret" not in done.stderr + done.stdout
    assert "running entry point" not in done.stderr

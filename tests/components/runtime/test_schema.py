"""A database store's schema and the MLflow that owns it: read from MLflow's own migration files
and from real SQLite stores made by this machine's MLflow; a store another release owns is
refused before a run exists, and left as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import mlflow
import pytest
from mlflow.store.db.utils import _get_latest_schema_revision
from mlflow.tracking import MlflowClient

from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.launcher import local_env
from mlflow_steps.components.runtime import cli, schema
from mlflow_steps.components.runtime.inputs import InputError
from mlflow_steps.components.runtime.schema_heads import HEADS

ROOT = Path(__file__).resolve().parents[3]
HOST = schema.installed_mlflow()


def made_store(path: Path) -> str:
    """A SQLite store made by this machine's MLflow (tables created, stamped at its head)."""
    uri = f"sqlite:///{path}"
    MlflowClient(tracking_uri=uri).search_experiments()
    return uri


def stamp(path: Path, revision: str) -> None:
    """The store as another release would have left it: its revision (what MLflow checks)."""
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = ?", (revision,))


def revision_and_runs(path: Path) -> tuple[str, int]:
    with sqlite3.connect(path) as db:
        revision = db.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        return revision, db.execute("SELECT count(*) FROM runs").fetchone()[0]


def test_this_machines_mlflow_is_read_from_its_migration_files():
    assert HOST is not None and HOST.version == mlflow.__version__
    assert HOST.head == _get_latest_schema_revision()
    listed = [rev for rev, releases in HEADS.items() if HOST.version in releases]
    assert listed in ([], [HOST.head])  # the generated table agrees with MLflow's files
    assert schema.owner_version(HOST.head, HOST) == HOST.version


def test_a_store_made_here_is_this_mlflows_and_a_new_one_is_left_unmade(tmp_path):
    uri = made_store(tmp_path / "own.db")
    assert schema.store_revision(uri) == HOST.head
    schema.check_schemas({"MLFLOW_TRACKING_URI": uri}, HOST)
    new = tmp_path / "new.db"
    assert schema.store_revision(f"sqlite:///{new}") is None and not new.exists()
    assert local_env.store_owner(f"sqlite:///{new}", print) == HOST.version
    assert local_env.store_owner(uri, print) == HOST.version
    assert local_env.store_owner("http://mlflow:5000", print) is None


OLDER = [rev for rev in HEADS if rev in HOST.chain and rev != HOST.head]
NEWER = [rev for rev in HEADS if rev not in HOST.chain]


@pytest.mark.skipif(not OLDER, reason="the table names no release older than this MLflow")
def test_a_store_of_an_older_release_is_refused_before_a_run_and_not_migrated(tmp_path):
    path = tmp_path / "old.db"
    uri = made_store(path)
    older = OLDER[-1]
    stamp(path, older)
    owner = HEADS[older][-1]
    codeset = ROOT / "examples" / "sklearn-pip"
    environ = {"MLFLOW_TRACKING_URI": uri, "FUSEML_MLFLOW_EXPERIMENT": "never"}
    code = cli.main([str(codeset)], environ=environ)
    assert code == 2
    assert revision_and_runs(path) == (older, 0)  # not migrated, no run
    with pytest.raises(InputError) as refused:
        schema.check_schemas({"MLFLOW_TRACKING_URI": uri}, HOST)
    message = str(refused.value)
    assert f"MLflow {HEADS[older][0]}" in message and f"MLflow {HOST.version}" in message
    assert "mlflow db upgrade" in message and f"mlflow-skinny=={owner}" in message
    assert local_env.store_owner(uri, print) == owner


@pytest.mark.skipif(not NEWER, reason="the table names no release newer than this MLflow")
def test_a_store_of_a_newer_release_is_refused_naming_it(tmp_path):
    path = tmp_path / "new.db"
    uri = made_store(path)
    stamp(path, NEWER[-1])
    with pytest.raises(InputError) as refused:
        schema.check_schemas({"MLFLOW_TRACKING_URI": uri}, HOST)
    message = str(refused.value)
    assert f"MLflow {HEADS[NEWER[-1]][-1]}" in message and f"MLflow {HOST.version}" in message
    assert revision_and_runs(path) == (NEWER[-1], 0)


def test_an_unknown_revision_is_refused_too(tmp_path):
    path = tmp_path / "odd.db"
    uri = made_store(path)
    stamp(path, "0123456789ab")
    with pytest.raises(InputError, match="another MLflow release"):
        schema.check_schemas({"MLFLOW_TRACKING_URI": uri}, HOST)


@pytest.mark.parametrize(
    "requirement, pinned",
    [
        ("mlflow-skinny", "mlflow-skinny==3.17.2"),
        ("mlflow>=3", "mlflow==3.17.2"),
        ("mlflow-skinny<3", "mlflow-skinny<3"),  # excludes it: kept, the runtime refuses
        ("mlflow-skinny boto3", "mlflow-skinny==3.17.2 boto3"),
    ],
)
def test_the_mlflow_addition_is_pinned_where_it_allows_the_owner(requirement, pinned):
    options = BuildOptions(mlflow_requirement=requirement)
    assert local_env.pin_mlflow(options, "3.17.2").mlflow_requirement == pinned

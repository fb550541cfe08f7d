"""What each tracking store URI needs, and the image-side error when it is missing."""

from __future__ import annotations

import pytest

from mlflow_steps.components.runtime import store
from mlflow_steps.components.runtime.inputs import InputError


@pytest.mark.parametrize(
    ("uri", "requirements"),
    [
        ("sqlite:////tmp/mlflow.db", ["sqlalchemy", "alembic"]),
        ("postgresql+psycopg2://u:p@db/mlflow", ["sqlalchemy", "alembic", "psycopg2-binary"]),
        ("postgresql+psycopg://db/m", ["sqlalchemy", "alembic", "psycopg[binary]"]),
        ("mysql+pymysql://db/m", ["sqlalchemy", "alembic", "PyMySQL"]),
        ("mssql+pyodbc://db/m", ["sqlalchemy", "alembic", "pyodbc"]),
        ("postgresql+asyncpg://db/m", ["sqlalchemy", "alembic", "asyncpg"]),
        ("http://mlflow:5000", []),
        ("https://mlflow.example.com", []),
        ("databricks", []),
        ("databricks://profile", []),
        ("file:///tmp/mlruns", []),
        ("/tmp/mlruns", []),
        ("", []),
    ],
)
def test_what_each_store_needs(uri, requirements):
    assert [req for _, req in store.needs(uri)] == requirements


def test_without_a_driver_the_installed_sqlalchemy_decides(monkeypatch):
    import sqlalchemy
    from packaging.version import Version

    expected = "psycopg" if Version(sqlalchemy.__version__) >= Version("2.1") else "psycopg2"
    assert store.driver_of("postgresql://db/m") == expected
    assert store.driver_of("mysql://db/m") == "mysqldb"
    monkeypatch.setattr(store.importlib.util, "find_spec", lambda name: None)
    assert store.driver_of("postgresql://db/m") == "psycopg"  # no SQLAlchemy: 2.1's choice


def test_a_store_the_environment_cannot_serve_is_named_without_credentials(monkeypatch):
    monkeypatch.setattr(store.importlib.util, "find_spec", lambda name: None)
    environ = {"MLFLOW_TRACKING_URI": "postgresql://alice:s3cret@db:5432/mlflow"}
    with pytest.raises(InputError) as raised:
        store.check_stores(environ)
    text = str(raised.value)
    assert "MLFLOW_TRACKING_URI is a postgresql database" in text
    assert "sqlalchemy, alembic, psycopg[binary]" in text and "s3cret" not in text
    store.check_stores({"MLFLOW_TRACKING_URI": "http://mlflow:5000"})  # nothing needed

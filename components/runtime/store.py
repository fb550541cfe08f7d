"""What a tracking store URI needs in the environment that runs MLflow.

MLflow's database stores (`sqlite:`, `postgresql:`, `mysql:`, `mssql:`, optionally with
`+driver`) need SQLAlchemy, Alembic and the database driver; `http(s):`, `databricks`, `file:`
and plain paths need nothing beyond MLflow. The launcher adds what is missing to a local
environment; in an image, a store the image cannot serve is an error before any run starts.
Stdlib only, Python 3.6+.
"""

import importlib.util

from .inputs import InputError

# MLflow's database engines; dialect[+driver] -> (module, pip requirement) of the driver.
DRIVERS = {
    "sqlite": ("sqlite3", None),
    "postgresql": ("psycopg2", "psycopg2-binary"),
    "postgresql+psycopg2": ("psycopg2", "psycopg2-binary"),
    "postgresql+psycopg": ("psycopg", "psycopg[binary]"),
    "postgresql+pg8000": ("pg8000", "pg8000"),
    "mysql": ("MySQLdb", "mysqlclient"),
    "mysql+mysqldb": ("MySQLdb", "mysqlclient"),
    "mysql+pymysql": ("pymysql", "PyMySQL"),
    "mssql": ("pyodbc", "pyodbc"),
    "mssql+pyodbc": ("pyodbc", "pyodbc"),
    "mssql+pymssql": ("pymssql", "pymssql"),
}
DATABASE_ENGINES = ("sqlite", "postgresql", "mysql", "mssql")
SQL_PACKAGES = (("sqlalchemy", "sqlalchemy"), ("alembic", "alembic"))


def scheme_of(uri):
    head, sep, _ = (uri or "").partition(":")
    return head.lower() if sep else ""


def needs(uri):
    """[(module, requirement)] that a store at `uri` needs; [] when MLflow alone serves it."""
    scheme = scheme_of(uri)
    engine, _, driver = scheme.partition("+")
    if engine not in DATABASE_ENGINES:
        return []
    module, requirement = DRIVERS.get(scheme, (driver, driver))
    found = list(SQL_PACKAGES)
    if requirement:
        found.append((module, requirement))
    return found


def missing(uri):
    """The requirements of `needs(uri)` whose module cannot be imported here."""
    return [req for module, req in needs(uri) if importlib.util.find_spec(module) is None]


def check_stores(environ):
    """Raise InputError naming what is missing for MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        uri = environ.get(name, "")
        lacking = missing(uri)
        if lacking:
            raise InputError(
                "{} is a {} database, and this environment lacks {}; add them to the "
                "codeset's requirements (and rebuild), or use an http(s) tracking "
                "server".format(name, scheme_of(uri), ", ".join(lacking))
            )

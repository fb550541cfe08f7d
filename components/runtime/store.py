"""What a tracking store URI needs in the environment that runs MLflow.

MLflow's database stores (`sqlite:`, `postgresql:`, `mysql:`, `mssql:`, optionally with
`+driver`) need SQLAlchemy, Alembic and the database driver; `http(s):`, `databricks`, `file:`
and plain paths need nothing beyond MLflow. Without `+driver`, the driver is the one the
installed SQLAlchemy picks for the dialect (PostgreSQL: psycopg from SQLAlchemy 2.1, psycopg2
before); when SQLAlchemy itself is missing, the current release's choice is assumed. The
launcher adds what is missing to a local environment; in an image, a store the image cannot
serve is an error before any run starts. Stdlib only, Python 3.6+.
"""

import importlib.util

from .inputs import InputError

DATABASE_ENGINES = ("sqlite", "postgresql", "mysql", "mssql")
# SQLAlchemy driver name -> (module, pip requirement); None: in the standard library.
DRIVERS = {
    "pysqlite": ("sqlite3", None),
    "psycopg2": ("psycopg2", "psycopg2-binary"),
    "psycopg": ("psycopg", "psycopg[binary]"),
    "pg8000": ("pg8000", "pg8000"),
    "mysqldb": ("MySQLdb", "mysqlclient"),
    "pymysql": ("pymysql", "PyMySQL"),
    "pyodbc": ("pyodbc", "pyodbc"),
    "pymssql": ("pymssql", "pymssql"),
}
# The driver SQLAlchemy's current release (2.1) uses for a dialect given without `+driver`.
DEFAULT_DRIVERS = {
    "sqlite": "pysqlite",
    "postgresql": "psycopg",
    "mysql": "mysqldb",
    "mssql": "pyodbc",
}
SQL_PACKAGES = (("sqlalchemy", "sqlalchemy"), ("alembic", "alembic"))


def scheme_of(uri):
    head, sep, _ = (uri or "").partition(":")
    return head.lower() if sep else ""


def driver_of(uri):
    """The SQLAlchemy driver a database URI uses: `+driver`, else the installed SQLAlchemy's
    default for the dialect, else the current release's default."""
    engine, _, driver = scheme_of(uri).partition("+")
    if driver:
        return driver
    if importlib.util.find_spec("sqlalchemy") is not None:
        try:
            from sqlalchemy.engine.url import make_url

            return make_url(uri).get_dialect().driver
        except Exception:  # an odd URI: MLflow reports it better than a guess here
            pass
    return DEFAULT_DRIVERS[engine]


def needs(uri):
    """[(module, requirement)] that a store at `uri` needs; [] when MLflow alone serves it."""
    engine = scheme_of(uri).partition("+")[0]
    if engine not in DATABASE_ENGINES:
        return []
    driver = driver_of(uri)
    module, requirement = DRIVERS.get(driver, (driver, driver))
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


if __name__ == "__main__":  # the launcher asks a local environment what it lacks
    import json
    import sys

    print(json.dumps(missing(sys.argv[1])))

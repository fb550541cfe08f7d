"""A database tracking store's schema, and the MLflow that owns it.

MLflow stamps a database store (`sqlite:`, `postgresql:`, `mysql:`, `mssql:`) with an Alembic
revision in its `alembic_version` table. An MLflow whose newest migration (its head) is later
than the store's revision upgrades the store on first use ("Updating database tables"), after
which older MLflow releases, the user's server and UI among them, refuse it. A run must never do
that: `check_schemas` refuses, before any run exists, a store whose revision is not this
environment's MLflow head, naming both MLflow versions and `mlflow db upgrade`.

Revisions are read from MLflow's own migration files (`mlflow/store/db_migrations/versions/*.py`,
`revision = "..."` / `down_revision = "..."`); a revision is named as a release through
`schema_heads.HEADS` (revision -> releases whose head it is), generated from the migration files
of released wheels by `scripts/mlflow-schema-heads`. Stdlib (+ SQLAlchemy for reading a store,
present wherever a database store can be used), Python 3.6+.
"""

import importlib.util
import os
import re

from .inputs import InputError
from .schema_heads import HEADS
from .store import DATABASE_ENGINES, scheme_of

ASSIGNMENT = re.compile(
    r"""^(revision|down_revision)\s*=\s*(?:['"]([0-9A-Za-z_]+)['"]|None)""", re.M
)
VERSION = re.compile(r"""^VERSION\s*=\s*['"]([^'"]+)['"]""", re.M)


class Installed(object):
    """An installed MLflow: `version` (e.g. "3.17.2"), `head` (its newest schema revision),
    `chain` ({revision: down_revision}, the root's down_revision None)."""

    def __init__(self, version, chain):
        self.version = version
        self.chain = chain
        self.head = head_of(chain)


def read_chain(folder):
    """{revision: down_revision} of the migration files in `folder` (MLflow's
    store/db_migrations/versions); a file without a `revision` line is skipped."""
    chain = {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py") or name.startswith("__"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as handle:
            found = dict((key, value or None) for key, value in ASSIGNMENT.findall(handle.read()))
        if found.get("revision"):
            chain[found["revision"]] = found.get("down_revision")
    return chain


def head_of(chain):
    """The revision no other revision names as its down_revision (MLflow's history is linear)."""
    parents = set(chain.values())
    heads = sorted(rev for rev in chain if rev not in parents)
    if len(heads) != 1:
        raise ValueError("MLflow's migrations have {} heads: {}".format(len(heads), heads))
    return heads[0]


def installed_mlflow(package_dir=None):
    """The MLflow importable here (or at `package_dir`, the `mlflow` package folder), read from
    its files without importing it; None when there is none or it has no migrations."""
    if package_dir is None:
        spec = importlib.util.find_spec("mlflow")
        if spec is None or not spec.submodule_search_locations:
            return None
        package_dir = next(iter(spec.submodule_search_locations))
    versions = os.path.join(package_dir, "store", "db_migrations", "versions")
    try:
        with open(os.path.join(package_dir, "version.py"), encoding="utf-8") as handle:
            version = VERSION.search(handle.read())
        chain = read_chain(versions)
    except (OSError, ValueError):
        return None
    if version is None or not chain:
        return None
    return Installed(version.group(1), chain)


def sqlite_file(uri):
    """The file of a `sqlite:` URI (SQLAlchemy's form: sqlite:///relative, sqlite:////absolute);
    None for an in-memory database."""
    rest = uri.split(":", 1)[1]
    path = rest[3:] if rest.startswith("///") else ""
    path = path.split("?", 1)[0]
    return path if path and path != ":memory:" else None


def store_revision(uri):
    """The `alembic_version` of the database store at `uri`; None for a store MLflow has not
    made yet (no file, no table). SQLite is read with the standard library, other databases with
    SQLAlchemy (its errors propagate)."""
    engine = scheme_of(uri).partition("+")[0]
    if engine == "sqlite":
        import sqlite3

        path = sqlite_file(uri)
        if path is None or not os.path.exists(path):
            return None
        connection = sqlite3.connect("file:{}?mode=ro".format(path), uri=True)
        try:
            table = connection.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='alembic_version'"
            ).fetchone()
            row = table and connection.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            connection.close()
        return row[0] if row else None
    import sqlalchemy

    database = sqlalchemy.create_engine(uri)
    try:
        with database.connect() as connection:
            if not database.dialect.has_table(connection, "alembic_version"):
                return None
            row = connection.execute(
                sqlalchemy.text("SELECT version_num FROM alembic_version")
            ).fetchone()
    finally:
        database.dispose()
    return row[0] if row else None


def releases_of(revision):
    """The MLflow releases whose schema head is `revision`, e.g. "3.17.0 to 3.17.2"; None when
    the table does not know it."""
    releases = HEADS.get(revision)
    if not releases:
        return None
    return releases[0] if len(releases) == 1 else "{} to {}".format(releases[0], releases[-1])


def owner_version(revision, installed):
    """The newest MLflow release whose head is `revision`: `installed` when its head is it, else
    from the table; None when unknown."""
    if installed is not None and installed.head == revision:
        return installed.version
    releases = HEADS.get(revision)
    return releases[-1] if releases else None


def mismatch(name, revision, installed):
    """The refusal for a store at `revision` used with `installed` MLflow; None when they
    agree (or the store is new)."""
    if revision is None or revision == installed.head:
        return None
    owner = releases_of(revision)
    theirs = "MLflow {}".format(owner) if owner else "another MLflow release"
    if revision in installed.chain:
        return (
            "{name}'s schema is {theirs}'s (revision {rev}), older than this environment's MLflow "
            "{mine} (revision {head}), which would migrate the store so that {theirs} could no "
            "longer open it. Run with the MLflow that owns the store (pin it in the codeset's "
            "requirements, or set mlflow_requirement, e.g. --mlflow-requirement "
            "mlflow-skinny=={pin}), or upgrade the store on purpose first: back it up, then "
            "`mlflow db upgrade <tracking URI>` with MLflow {mine}".format(
                name=name,
                theirs=theirs,
                rev=revision,
                mine=installed.version,
                head=installed.head,
                pin=HEADS[revision][-1] if owner else "<its version>",
            )
        )
    return (
        "{name}'s schema is {theirs}'s (revision {rev}), which this environment's MLflow {mine} "
        "(revision {head}) does not know: the store is newer. Run with {theirs} (pin it in the "
        "codeset's requirements, or set mlflow_requirement); `mlflow db upgrade` cannot take a "
        "store back to an older MLflow".format(
            name=name, theirs=theirs, rev=revision, mine=installed.version, head=installed.head
        )
    )


def check_schemas(environ, installed=None):
    """Raise InputError when MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI is a database store whose
    revision is not the head of this environment's MLflow (see `mismatch`)."""
    installed = installed or installed_mlflow()
    if installed is None:
        return
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        uri = environ.get(name, "")
        if scheme_of(uri).partition("+")[0] not in DATABASE_ENGINES:
            continue
        try:
            revision = store_revision(uri)
        except Exception:  # an unreachable database: MLflow's own error says it better
            continue
        refusal = mismatch(name, revision, installed)
        if refusal:
            raise InputError(refusal)

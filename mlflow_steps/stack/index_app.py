"""pypiserver's WSGI app over $MLFLOW_STEPS_WHEELHOUSE, for a threaded WSGI server (gunicorn):
pypiserver's own runner is single-threaded, which would serialise uv's parallel downloads.

With $MLFLOW_STEPS_INDEX_HTPASSWD set, listings and downloads need a user of that htpasswd file
(pypiserver's `-P htpasswd -a download,list`; passlib checks the passwords).

pypiserver 2.4 hashes every wheel a project page lists, on every request (35 ms for scipy's page
here), like no real index; with its `cache` extra (watchdog) installed, the digests were still
computed on every request in this project's measurement (the cause not traced). The
wheelhouse does not change while it is served, so each file's digest is kept, by path, size
and modification time."""

import functools
import os
import pathlib
import threading

import pypiserver
from pypiserver.backend import digest_file

HTPASSWD = os.environ.get("MLFLOW_STEPS_INDEX_HTPASSWD")
AUTH = {"authenticate": ["download", "list"], "password_file": HTPASSWD} if HTPASSWD else {}

app = pypiserver.app(
    roots=[pathlib.Path(os.environ["MLFLOW_STEPS_WHEELHOUSE"])], disable_fallback=True, **AUTH
)


@functools.lru_cache(maxsize=4096)
def kept_digest(path: str, size: int, mtime_ns: int, hash_algo: str) -> str:
    return digest_file(path, hash_algo)


def digest(pkg) -> str | None:
    """pypiserver's `Backend.digest` (`<algo>=<hex>` of the package's file), kept."""
    config = app._pypiserver_config
    if config.hash_algo is None or pkg.fn is None:
        return None
    stat = os.stat(pkg.fn)
    return kept_digest(pkg.fn, stat.st_size, stat.st_mtime_ns, config.hash_algo)


app._pypiserver_config.backend.backend.digest = digest


def warm() -> None:
    """Every wheel's digest, computed once in the background as the server starts."""
    for pkg in app._pypiserver_config.backend.get_all_packages():
        digest(pkg)


threading.Thread(target=warm, name="digests", daemon=True).start()

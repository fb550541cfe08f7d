"""pypiserver's WSGI app over $MLFLOW_STEPS_WHEELHOUSE, for a threaded WSGI server (gunicorn):
pypiserver's own runner is single-threaded, which would serialise uv's parallel downloads.

With $MLFLOW_STEPS_INDEX_HTPASSWD set, listings and downloads need a user of that htpasswd file
(pypiserver's `-P htpasswd -a download,list`; passlib checks the passwords).

pypiserver 2.4 hashes every wheel a project page lists, on every request (35 ms for scipy's page
here), like no real index; with its `cache` extra (watchdog) installed, the digests were still
computed on every request in this project's measurement (the cause not traced); and it walks
the wheelhouse and parses every file name on every request (a page, a HEAD, a range read),
under the GIL: uv's resolution of the wine-like stack (53 distributions, about 200 requests)
waited for that more than for anything else. Each file's digest is kept, by path, size and
modification time, and the listing while no folder of the wheelhouse changes."""

import functools
import os
import pathlib
import threading
import time

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
_walked = app._pypiserver_config.backend.backend.get_all_packages
_listings: dict[tuple, list] = {}
SETTLED = 2.0  # seconds: a folder changed more recently may change again within its mtime's tick


def folders(root: str) -> tuple:
    """(folder, mtime_ns) of every folder under `root`: a file added, removed or renamed
    changes its folder's mtime."""
    return tuple((path, os.stat(path).st_mtime_ns) for path, _, _ in os.walk(root))


def listed():
    """pypiserver's `get_all_packages` (on every request, a walk of the wheelhouse that parses
    every file name: 1.5 ms of the GIL for 69 wheels), kept while no folder of the wheelhouse
    changes; never kept while a folder changed in the last `SETTLED` seconds (git's racy-clean
    rule: a change within the same mtime tick would go unseen)."""
    key = tuple(folders(str(root)) for root in app._pypiserver_config.roots)
    found = _listings.get(key)
    if found is None:
        found = list(_walked())
        settled = time.time_ns() - int(SETTLED * 1e9)
        if all(mtime < settled for folders_of_root in key for _, mtime in folders_of_root):
            _listings.clear()
            _listings[key] = found
    return iter(found)


app._pypiserver_config.backend.backend.get_all_packages = listed


def warm() -> None:
    """Every wheel's digest, computed once in the background as the server starts."""
    for pkg in app._pypiserver_config.backend.get_all_packages():
        digest(pkg)


threading.Thread(target=warm, name="digests", daemon=True).start()

"""pypiserver's WSGI app over $MLFLOW_STEPS_WHEELHOUSE, for a threaded WSGI server (gunicorn):
pypiserver's own runner is single-threaded, which would serialise uv's parallel downloads.

With $MLFLOW_STEPS_INDEX_HTPASSWD set, listings and downloads need a user of that htpasswd file
(pypiserver's `-P htpasswd -a download,list`; passlib checks the passwords)."""

import os
import pathlib

import pypiserver

HTPASSWD = os.environ.get("MLFLOW_STEPS_INDEX_HTPASSWD")
AUTH = {"authenticate": ["download", "list"], "password_file": HTPASSWD} if HTPASSWD else {}

app = pypiserver.app(
    roots=[pathlib.Path(os.environ["MLFLOW_STEPS_WHEELHOUSE"])], disable_fallback=True, **AUTH
)

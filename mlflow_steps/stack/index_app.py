"""pypiserver's WSGI app over $MLFLOW_STEPS_WHEELHOUSE, for a threaded WSGI server (gunicorn):
pypiserver's own runner is single-threaded, which would serialise uv's parallel downloads."""

import os
import pathlib

import pypiserver

app = pypiserver.app(
    roots=[pathlib.Path(os.environ["MLFLOW_STEPS_WHEELHOUSE"])], disable_fallback=True
)

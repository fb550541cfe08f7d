"""The test suite's servers: the stack's registry, index and tracking server
(mlflow_steps.stack.services), plus what only tests use: an S3-compatible server and
PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from mlflow_steps.stack.services import (  # noqa: F401 (re-exported for the tests)
    Service,
    free_port,
    serving,
    start,
    start_index,
    start_registry,
    wait_http,
)
from mlflow_steps.stack.services import start_tracking_server as start_stack_tracking_server

S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing-key", "AWS_SECRET_ACCESS_KEY": "testing-secret"}


def start_s3(workdir: Path, bucket: str = "mlflow") -> Service:
    """An S3-compatible server on 127.0.0.1 (moto's standalone server: real HTTP, S3 API)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "s3.log"
    process = start(["moto_server", "-H", "127.0.0.1", "-p", str(port)], log)
    url = f"http://127.0.0.1:{port}"
    service = serving(Service(f"127.0.0.1:{port}", process, log, {}), url + "/", ok=(200,))
    import boto3

    boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing-key",
        aws_secret_access_key="testing-secret",
    ).create_bucket(Bucket=bucket)
    service.extra.update(url=url, bucket=bucket)
    return service


def start_tracking_server(workdir: Path, s3: Service | None = None) -> Service:
    """The stack's tracking server, its artifacts proxied to the S3 server when given."""
    if s3 is None:
        return start_stack_tracking_server(workdir)
    return start_stack_tracking_server(
        workdir,
        artifacts=f"s3://{s3.extra['bucket']}/artifacts",
        env={**S3_CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": s3.extra["url"]},
    )


POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


def start_postgres(workdir: Path, port: int | None = None) -> Service:
    """A real PostgreSQL (Debian's postgresql-15) on 127.0.0.1, run as the `postgres` user with
    trust authentication, and a database `mlflow`; extra["url"] is its SQLAlchemy URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    port = port or free_port()
    shutil.chown(workdir, "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *as_postgres,
            str(POSTGRES_BIN / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "mlflow",
        ],
        check=True,
        capture_output=True,
    )
    log = workdir / "postgres.log"
    process = subprocess.Popen(
        [
            *as_postgres,
            *(str(POSTGRES_BIN / "postgres"), "-D", str(data), "-h", "127.0.0.1"),
            *("-p", str(port), "-k", str(workdir)),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while True:
        ready = subprocess.run(
            [str(POSTGRES_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
            capture_output=True,
        )
        if ready.returncode == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL did not start: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    subprocess.run(
        [
            str(POSTGRES_BIN / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "mlflow",
            "mlflow",
        ],
        check=True,
    )
    url = f"postgresql://mlflow@127.0.0.1:{port}/mlflow"
    return Service(f"127.0.0.1:{port}", process, log, {"url": url})


def start_logged_index(wheels: Path, folder: Path, password: str) -> Service:
    """`wheels` behind pypiserver with htpasswd (user `alice`, `password`) and gunicorn's access
    log on, for tests that assert which requests the index saw (`index_requests`)."""
    previous = os.environ.get("GUNICORN_CMD_ARGS")
    os.environ["GUNICORN_CMD_ARGS"] = "--access-logfile -"
    try:
        return start_index(wheels, folder, users={"alice": password})
    finally:
        if previous is None:
            del os.environ["GUNICORN_CMD_ARGS"]
        else:
            os.environ["GUNICORN_CMD_ARGS"] = previous


def index_requests(index: Service) -> list[str]:
    """The access lines of an index from `start_logged_index`, without the readiness probe's
    anonymous `GET /simple/` (one more when a first try timed out)."""
    return [
        line
        for line in index.access_log_lines()
        if re.search(r'"[A-Z]+ /', line)  # an access line, not gunicorn's own
        and not ('"GET /simple/ HTTP/1.1" 401' in line and "python-requests" in line)
    ]

"""Start real servers on 127.0.0.1: a CNCF distribution registry and a pypiserver index."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ACCESS_LINE = re.compile(r'^\S+ - \S+ \[[^]]+\] "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0, ok=(200, 401)) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code in ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout}s")


def session_members(session: int) -> list[int]:
    """Live processes whose session id is `session` (the leader itself excluded)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if pid != session and int(fields[3]) == session:
            found.append(pid)
    return found


@dataclass
class Service:
    host: str
    process: subprocess.Popen
    log: Path
    extra: dict = field(default_factory=dict)

    def stop(self) -> None:
        """Stop the server and everything in its session (services start in a session of
        their own: `mlflow server`'s job consumers leave its process group, not its session)."""
        members = session_members(self.process.pid)
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        for pid in members + session_members(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def access_log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def requests_seen(self) -> list[str]:
        """`METHOD /path` of every request in the registry's access log, in order."""
        return [
            f"{match['method']} {match['path']}"
            for line in self.access_log_lines()
            if (match := ACCESS_LINE.match(line))
        ]


REGISTRY_CONFIG = """\
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""

HTPASSWD_AUTH = """\
auth:
  htpasswd:
    realm: mlflow-steps-test
    path: {htpasswd}
"""


def start_registry(
    workdir: Path, users: dict[str, str] | None = None, port: int | None = None
) -> Service:
    """`docker-registry serve` (Debian's CNCF distribution), optionally with htpasswd auth."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config = REGISTRY_CONFIG.format(data=workdir / "data", port=port)
    if users:
        htpasswd = htpasswd_file(workdir / "htpasswd", users)
        config += HTPASSWD_AUTH.format(htpasswd=htpasswd)
    (workdir / "config.yml").write_text(config)
    log = workdir / "registry.log"
    process = subprocess.Popen(
        ["docker-registry", "serve", str(workdir / "config.yml")],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    host = f"127.0.0.1:{port}"
    wait_http(f"http://{host}/v2/")
    return Service(host, process, log)


def htpasswd_file(path: Path, users: dict[str, str]) -> Path:
    """An htpasswd file (bcrypt) for `users`, written by Apache's htpasswd."""
    path.write_text(
        "".join(
            subprocess.run(
                ["htpasswd", "-Bbn", user, password], capture_output=True, text=True, check=True
            ).stdout.strip()
            + "\n"
            for user, password in users.items()
        )
    )
    return path


def start_index(
    wheelhouse: Path, workdir: Path, port: int | None = None, users: dict[str, str] | None = None
) -> Service:
    """pypiserver over a wheelhouse, served by gunicorn with threads (pypiserver's own runner is
    single-threaded, unlike any real index); its simple index is at http://HOST/simple/. With
    `users`, downloads and listings require one of them (HTTP Basic, htpasswd)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = {**os.environ, "MLFLOW_STEPS_WHEELHOUSE": str(wheelhouse)}
    if users:
        env["MLFLOW_STEPS_INDEX_HTPASSWD"] = str(htpasswd_file(workdir / "htpasswd", users))
    log = workdir / "pypiserver.log"
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--chdir",
            str(root),
            "--workers",
            "1",
            "--threads",
            "16",
            "--bind",
            f"127.0.0.1:{port}",
            "tests.support.index_app:app",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    host = f"127.0.0.1:{port}"
    wait_http(f"http://{host}/simple/", timeout=30)
    return Service(host, process, log, {"url": f"http://{host}/simple/"})


S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing-key", "AWS_SECRET_ACCESS_KEY": "testing-secret"}


def start_s3(workdir: Path, bucket: str = "mlflow") -> Service:
    """An S3-compatible server on 127.0.0.1 (moto's standalone server: real HTTP, S3 API)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "s3.log"
    process = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", ok=(200,))
    import boto3

    boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing-key",
        aws_secret_access_key="testing-secret",
    ).create_bucket(Bucket=bucket)
    return Service(f"127.0.0.1:{port}", process, log, {"url": url, "bucket": bucket})


def start_tracking_server(
    workdir: Path, s3: Service | None = None, port: int | None = None
) -> Service:
    """`mlflow server` with a SQLite backend and proxied artifact storage on the S3 server
    (or in `workdir/artifacts` without one)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = workdir / "mlflow-server.log"
    env = dict(os.environ)
    destination = str(workdir / "artifacts")
    if s3 is not None:
        env.update(S3_CREDENTIALS, MLFLOW_S3_ENDPOINT_URL=s3.extra["url"])
        destination = f"s3://{s3.extra['bucket']}/artifacts"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{workdir / 'mlflow.db'}",
            "--artifacts-destination",
            destination,
            "--workers",
            "1",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=workdir,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health", timeout=90, ok=(200,))
    return Service(f"127.0.0.1:{port}", process, log, {"url": url})


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

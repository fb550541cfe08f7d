"""Real servers on 127.0.0.1: a CNCF distribution registry (Debian's `docker-registry`), a
pypiserver package index and an MLflow tracking server. Each runs in a session of its own and
is stopped as a whole session (`mlflow server` starts workers that leave its process group)."""

from __future__ import annotations

import contextlib
import os
import re
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


class PortInUse(RuntimeError):
    """127.0.0.1:`port` cannot be bound: a server listens there, or a connection holds it as
    its local port (any port in the kernel's ephemeral range can be taken that way)."""

    def __init__(self, port: int) -> None:
        super().__init__(f"127.0.0.1:{port} is in use")
        self.port = port


def port_for(port: int | None) -> int:
    """`port` if 127.0.0.1:`port` can be bound now (tried with SO_REUSEADDR, as the servers
    bind), else PortInUse; a free port when `port` is None. Checked before a server starts,
    so that a taken port is named at once and another server that answers there is never
    taken for the one started."""
    if port is None:
        return free_port()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortInUse(port) from exc
    return port


def wait_http(
    url: str,
    timeout: float = 20.0,
    ok=(200, 401),
    log: Path | None = None,
    process: subprocess.Popen | None = None,
) -> None:
    """Wait until `url` answers with one of `ok`; RuntimeError (with the end of `log`) if not
    within `timeout` seconds, or as soon as `process` (the server) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(
                f"the server for {url} exited (code {process.returncode}) before it answered"
                + (f": {tail}" if tail else "")
            )
        try:
            if requests.get(url, timeout=1).status_code in ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{url} did not come up in {timeout}s{': ' + tail if tail else ''}")


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
    """A started server: `host` is `127.0.0.1:PORT`; `extra` holds its URLs (`url`)."""

    host: str
    process: subprocess.Popen
    log: Path
    extra: dict = field(default_factory=dict)

    def stop(self) -> None:
        """Stop the server and everything in its session."""
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


def start(argv: list[str], log: Path, **kwargs) -> subprocess.Popen:
    """`argv` in a session of its own, its output to `log`."""
    return subprocess.Popen(
        argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True, **kwargs
    )


def serving(service: Service, url: str, **wait) -> Service:
    """`service` once `url` answers (see wait_http); stopped, whole session, if it never
    does, so that a failed start leaves nothing running."""
    try:
        wait_http(url, log=service.log, process=service.process, **wait)
    except BaseException:
        service.stop()
        raise
    return service


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
    realm: mlflow-steps
    path: {htpasswd}
"""


def start_registry(
    workdir: Path, users: dict[str, str] | None = None, port: int | None = None
) -> Service:
    """`docker-registry serve` (Debian's CNCF distribution) storing in `workdir/data`, plain
    http, optionally with htpasswd auth (`users`: {name: password}; needs `htpasswd`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port_for(port)
    config = REGISTRY_CONFIG.format(data=workdir / "data", port=port)
    if users:
        htpasswd = htpasswd_file(workdir / "htpasswd", users)
        config += HTPASSWD_AUTH.format(htpasswd=htpasswd)
    (workdir / "config.yml").write_text(config)
    log = workdir / "registry.log"
    process = start(["docker-registry", "serve", str(workdir / "config.yml")], log)
    host = f"127.0.0.1:{port}"
    return serving(Service(host, process, log), f"http://{host}/v2/")


def htpasswd_file(path: Path, users: dict[str, str]) -> Path:
    """An htpasswd file (bcrypt) for `users` ({name: password}), written by Apache's htpasswd;
    RuntimeError with htpasswd's own message when it fails."""
    lines = []
    for user, password in users.items():
        done = subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"htpasswd failed (exit {done.returncode}): {done.stderr.strip()}")
        lines.append(done.stdout.strip() + "\n")
    path.write_text("".join(lines))
    return path


def start_index(
    wheelhouse: Path, workdir: Path, port: int | None = None, users: dict[str, str] | None = None
) -> Service:
    """pypiserver over `wheelhouse` (no fallback to PyPI), served by gunicorn with threads
    (pypiserver's own runner is single-threaded, unlike any real index); extra["url"] is its
    simple index, http://HOST/simple/. With `users` ({name: password}; needs `htpasswd` and
    passlib), listings and downloads require one of them (pypiserver's `-P htpasswd -a
    download,list`): an index that answers 401 to anonymous requests."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port_for(port)
    log = workdir / "pypiserver.log"
    argv = [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "16"]
    argv += ["--access-logfile", "-"]  # into the log: each request, its answer, its user agent
    argv += ["--bind", f"127.0.0.1:{port}", "mlflow_steps.stack.index_app:app"]
    env = {**os.environ, "MLFLOW_STEPS_WHEELHOUSE": str(wheelhouse), "PYTHONUNBUFFERED": "1"}
    if users:
        env["MLFLOW_STEPS_INDEX_HTPASSWD"] = str(htpasswd_file(workdir / "htpasswd", users))
    process = start(argv, log, env=env)
    host = f"127.0.0.1:{port}"
    index = Service(host, process, log, {"url": f"http://{host}/simple/"})
    return serving(index, f"http://{host}/simple/", timeout=60)


def start_tracking_server(
    workdir: Path,
    port: int | None = None,
    artifacts: str = "",
    env: dict[str, str] | None = None,
) -> Service:
    """`mlflow server` with a SQLite backend in `workdir/mlflow.db` and proxied artifact
    storage at `artifacts` (default `workdir/artifacts`; an `s3://` URI with `env` holding the
    S3 endpoint and credentials); extra["url"] is http://HOST."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port_for(port)
    log = workdir / "mlflow-server.log"
    argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}"]
    argv += ["--artifacts-destination", artifacts or str(workdir / "artifacts"), "--workers", "1"]
    process = start(argv, log, env={**os.environ, **(env or {})}, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    # Under load (five builds on two cores) MLflow 3's server has taken over 90 s to answer.
    tracking = Service(f"127.0.0.1:{port}", process, log, {"url": url})
    return serving(tracking, url + "/health", timeout=240, ok=(200,))

"""`mlflow-steps stack up`, real: a registry, a package index and a tracking server start on
127.0.0.1, the Debian base image is pushed, the settings come out on stdout as NAME=VALUE
lines, and SIGTERM stops every server it started (their ports close)."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from mlflow_steps.stack.services import free_port
from tests.support.images import BUILDAH_ENV, CACHE
from tests.support.require import require_root, require_tools

pytestmark = pytest.mark.e2e
SETTINGS = {
    "FUSEML_REGISTRY",
    "FUSEML_PULL_REGISTRY",
    "FUSEML_INSECURE",
    "FUSEML_BASE_IMAGE",
    "FUSEML_PIP_INDEX_URL",
    "MLFLOW_TRACKING_URI",
}


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_stack_up_serves_prints_its_settings_and_stops_on_sigterm(tmp_path):
    require_root()
    require_tools("docker-registry", "buildah", "podman", "debootstrap")
    state = tmp_path / "state"
    state.mkdir()
    (state / "cache").symlink_to(CACHE)  # the tests' wheelhouse and base tarball
    ports = {name: free_port() for name in ("registry", "index", "tracking")}
    argv = [sys.executable, "-m", "mlflow_steps", "stack", "up", "--state", str(state)]
    argv += [f"--{name}-port={port}" for name, port in ports.items()]
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=BUILDAH_ENV
    )
    try:
        lines = [process.stdout.readline() for _ in SETTINGS]
        settings = dict(shlex.split(line)[0].split("=", 1) for line in lines if line)
        assert set(settings) == SETTINGS, process.stderr.read()
        registry = settings["FUSEML_REGISTRY"]
        assert registry == f"127.0.0.1:{ports['registry']}"
        assert settings["FUSEML_PULL_REGISTRY"] == "" and settings["FUSEML_INSECURE"] == "true"
        base = settings["FUSEML_BASE_IMAGE"]
        assert base == f"{registry}/base/debian:bookworm"
        manifest = requests.head(
            f"http://{registry}/v2/base/debian/manifests/bookworm",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            timeout=10,
        )
        assert manifest.status_code == 200
        index = requests.get(settings["FUSEML_PIP_INDEX_URL"] + "mlflow-skinny/", timeout=10)
        assert index.status_code == 200 and "mlflow_skinny-" in index.text
        tracking = requests.get(settings["MLFLOW_TRACKING_URI"] + "/health", timeout=10)
        assert tracking.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    assert process.returncode == 0, process.stderr.read()
    deadline = time.monotonic() + 10
    while any(map(port_open, ports.values())) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(map(port_open, ports.values()))
    assert os.listdir(state / "registry" / "data")  # the state stays for the next run

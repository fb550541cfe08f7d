"""A local stack to try the steps without a cluster, on 127.0.0.1: a registry (Debian's
`docker-registry`), a package index (pypiserver over a cached wheelhouse) and an MLflow
tracking server, plus a debootstrapped Debian base image pushed once. `mlflow-steps stack up`
runs it; the demo, the tests and the benchmarks start theirs from here.

Needs root, buildah, podman, debootstrap and docker-registry (`bash scripts/setup-machine`
installs them on Debian 12), and the `stack` extra (pypiserver, gunicorn, mlflow).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import images, services

DEFAULT_STATE = Path.home() / ".cache" / "mlflow-steps" / "stack"
# Fixed ports: a build's tag includes its base image and index URL, so they must not move
# between runs for the second run to find the first one's image. Below Linux's ephemeral range
# (32768-60999 by default, /proc/sys/net/ipv4/ip_local_port_range): a port in it can be taken
# by any connection's local end (35000 once was, in CI, between the demo's check and its start).
DEFAULT_PORTS = {"registry": 27500, "index": 27501, "tracking": 27502}


@dataclass
class Stack:
    registry: services.Service
    index: services.Service
    tracking: services.Service
    base_image: str

    def settings(self) -> dict[str, str]:
        """What a build and a run against this stack are given: builder inputs and the
        tracking URI, by their environment names (FUSEML_<INPUT>, MLFLOW_TRACKING_URI)."""
        return {
            "FUSEML_REGISTRY": self.registry.host,
            "FUSEML_PULL_REGISTRY": "",
            "FUSEML_INSECURE": "true",
            "FUSEML_BASE_IMAGE": self.base_image,
            "FUSEML_PIP_INDEX_URL": self.index.extra["url"],
            "MLFLOW_TRACKING_URI": self.tracking.extra["url"],
        }

    def stop(self) -> None:
        for service in (self.tracking, self.index, self.registry):
            service.stop()


@contextlib.contextmanager
def running(
    state: Path = DEFAULT_STATE, ports: dict[str, int] | None = None, log=print
) -> Iterator[Stack]:
    """Start the stack with its state in `state` (kept between runs: the registry's images,
    the tracking server's runs, the base image tarball and the wheelhouse); stop it on exit."""
    ports = {**DEFAULT_PORTS, **(ports or {})}
    started: list[services.Service] = []
    try:
        for name, port in ports.items():
            port_free(name, port)
        registry = services.start_registry(state / "registry", port=ports["registry"])
        started.append(registry)
        index = services.start_index(
            images.wheelhouse(state / "cache"), state / "index", port=ports["index"]
        )
        started.append(index)
        tracking = services.start_tracking_server(state / "tracking", port=ports["tracking"])
        started.append(tracking)
        yield Stack(registry, index, tracking, base_image(registry.host, state / "cache", log))
    finally:
        for service in reversed(started):
            service.stop()


def port_free(name: str, port: int) -> None:
    """RuntimeError naming the service, its port and how to choose another one when
    127.0.0.1:`port` is taken."""
    try:
        services.port_for(port)
    except services.PortInUse:
        raise RuntimeError(
            f"the {name}'s port, 127.0.0.1:{port}, is in use: stop what holds it "
            f"(`ss -tanp 'sport = :{port}'` shows it); `mlflow-steps stack up` also runs on "
            f"other ports (`--{name}-port N`)"
        ) from None


def base_image(registry: str, cache: Path, log=print) -> str:
    """The debootstrapped Debian base in `registry`, pushed once."""
    from mlflow_steps.components.builder.oci.registry import RegistryClient

    if RegistryClient(registry, insecure=True).manifest_digest("base/debian", "bookworm") is None:
        log(f"pushing a debootstrapped Debian base image to {registry} (once)")
        pushed = images.push_base_images(registry, cache)
        # The registry has them now; builds pull from it. No local copies left behind.
        images.remove_local_images(*pushed.values())
    return f"{registry}/base/debian:bookworm"


def build_argv(
    codeset: Path,
    registry_host: str,
    *,
    base: str = "",
    index_url: str = "",
    repository: str = "",
    output: Path | None = None,
) -> list[str]:
    """`mlflow-steps build` against a local stack: a plain-http registry that is also the pull
    registry, buildah, and the given base image, index and repository when set."""
    argv = [sys.executable, "-m", "mlflow_steps", "build", str(codeset)]
    argv += ["--registry", registry_host, "--pull-registry", "", "--insecure"]
    argv += ["--engine", "buildah"]
    for flag, value in (
        ("--base-image", base),
        ("--pip-index-url", index_url),
        ("--repository", repository),
        ("--output", output),
    ):
        if value:
            argv += [flag, str(value)]
    return argv


def state_from_env() -> Path:
    return Path(os.environ.get("MLFLOW_STEPS_STACK_STATE", DEFAULT_STATE))

"""Run the builder's CLI the way a step runs it (a subprocess), against the local test stack:
a plain-http registry, a local index, a debootstrapped base image, buildah."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlflow_steps.stack import build_argv as local_build_argv
from tests.support.images import BUILDAH_ENV


def build_with_cli(codeset: Path, registry, index, base: str, out: Path, *extra: str):
    argv = local_build_argv(
        codeset,
        registry.host,
        base=base,
        index_url=index.extra["url"],
        repository="e2e/trainer",
        output=out,
    )
    # `single` unless a test asks for per-package: this machine's buildah stores images with vfs,
    # which keeps a full copy of the tree per layer, so pulling a ~50-layer image to run it costs
    # tens of GB. The per-package path has its own tests (sklearn_build, layered/).
    layering = [] if any(a.startswith("--layering") for a in extra) else ["--layering=single"]
    argv += ["--digest-output", f"{out}.digest", *layering, *extra]
    return subprocess.run(argv, capture_output=True, text=True, env=BUILDAH_ENV)


def run_in_image(image: str, *command: str) -> subprocess.CompletedProcess:
    """`command` in a container of `image` (pulled from the plain-http registry), with buildah."""
    ctr = (
        subprocess.run(
            ["buildah", "from", "--tls-verify=false", image],
            capture_output=True,
            text=True,
            check=True,
            env=BUILDAH_ENV,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    try:
        return subprocess.run(
            ["buildah", "run", "--isolation", "chroot", ctr, "--", *command],
            capture_output=True,
            text=True,
            env=BUILDAH_ENV,
        )
    finally:
        subprocess.run(["buildah", "rm", ctr], capture_output=True, env=BUILDAH_ENV)

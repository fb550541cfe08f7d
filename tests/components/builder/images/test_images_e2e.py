"""`mlflow-steps images --variant kaniko`, built for real with buildah on the Debian base.

The Kaniko executor image cannot be pulled here (no public registry is reachable), so a
stand-in executor image is built locally (a shell script at /kaniko/executor) and passed as
`--kaniko-image`: this checks the variant's multi-stage Dockerfile, the builder under /kaniko
and its entrypoint, not Kaniko itself. The buildah variant is built and run as the engines run
it in tests/generators/test_run_generated_e2e.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.images import BUILDAH_ENV, push_derived_image
from tests.support.oci import registry_digest

pytestmark = pytest.mark.e2e


def test_kaniko_variant_builds_with_the_builder_under_kaniko(
    registry, package_index, base_images, tmp_path
):
    executor = push_derived_image(
        base_images["debian"],
        "mkdir -p /kaniko/.docker && printf '#!/bin/sh\\necho stand-in executor\\n' "
        "> /kaniko/executor && chmod +x /kaniko/executor",
        f"{registry.host}/stand-in/kaniko:debug",
    )
    out = tmp_path / "images.txt"
    done = subprocess.run(
        [
            sys.executable, "-m", "mlflow_steps", "images", "--registry", registry.host,
            "--variant", "kaniko", "--kaniko-image", executor, "--base-image",
            base_images["debian"], "--insecure", "--pip-index-url", package_index.extra["url"],
            "--tag", "test", "--output", str(out),
        ],
        capture_output=True, text=True, env=BUILDAH_ENV,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    variant, reference = out.read_text().split()
    image, _, digest = reference.partition("@")
    assert (
        variant == "kaniko" and image == f"{registry.host}/mlflow-steps/mlflow-builder-kaniko:test"
    )
    assert digest == registry_digest(image)
    ctr = subprocess.run(
        ["buildah", "from", "--quiet", "--tls-verify=false", reference],
        check=True, capture_output=True, text=True, env=BUILDAH_ENV,
    ).stdout.split()[-1]  # fmt: skip
    try:
        ran = subprocess.run(
            ["buildah", "run", "--isolation", "chroot", ctr, "--", "sh", "-c",
             "/kaniko/mlflow-steps/bin/mlflow-steps --version && /kaniko/executor && "
             "echo $FUSEML_ENGINE"],
            capture_output=True, text=True, env=BUILDAH_ENV,
        )  # fmt: skip
    finally:
        subprocess.run(["buildah", "rm", ctr], capture_output=True, env=BUILDAH_ENV)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split("\n")[:3] == ["mlflow-steps 0.1.0", "stand-in executor", "kaniko"]


def test_unprivileged_variant_runs_the_builder_as_a_non_root_user_without_an_engine(
    registry, package_index, base_images, tmp_path
):
    """`mlflow-steps images --variant unprivileged`: built with buildah on the Debian base,
    pushed as mlflow-builder; run with the image's own user, it is 65532 (not root), finds no
    container engine and prints the CLI's help."""
    out = tmp_path / "images.txt"
    done = subprocess.run(
        [
            sys.executable, "-m", "mlflow_steps", "images", "--registry", registry.host,
            "--variant", "unprivileged", "--base-image", base_images["debian"], "--insecure",
            "--pip-index-url", package_index.extra["url"], "--tag", "test", "--output", str(out),
        ],
        capture_output=True, text=True, env=BUILDAH_ENV,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    variant, reference = out.read_text().split()
    image, _, digest = reference.partition("@")
    assert variant == "unprivileged"
    assert image == f"{registry.host}/mlflow-steps/mlflow-builder:test"
    assert digest == registry_digest(image)
    ctr = subprocess.run(
        ["buildah", "from", "--quiet", "--tls-verify=false", reference],
        check=True, capture_output=True, text=True, env=BUILDAH_ENV,
    ).stdout.split()[-1]  # fmt: skip
    try:
        user = subprocess.run(
            ["buildah", "inspect", "--format", "{{.OCIv1.Config.User}}", ctr],
            check=True, capture_output=True, text=True, env=BUILDAH_ENV,
        ).stdout.strip()  # fmt: skip
        ran = subprocess.run(
            ["buildah", "run", "--isolation", "chroot", ctr, "--", "sh", "-c",
             "id -u; id -g; for e in buildah podman docker kaniko executor; do "
             "command -v $e; done; echo engine=$FUSEML_ENGINE home=$HOME; "
             "touch $HOME/w && echo home-writable; mlflow-steps --help | head -n 1"],
            capture_output=True, text=True, env=BUILDAH_ENV,
        )  # fmt: skip
    finally:
        subprocess.run(["buildah", "rm", ctr], capture_output=True, env=BUILDAH_ENV)
        subprocess.run(["buildah", "rmi", reference], capture_output=True, env=BUILDAH_ENV)
    assert user == "65532:65532"
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[:2] == ["65532", "65532"], lines  # no engine found: nothing printed between
    assert lines[2] == "engine=none home=/home/nonroot"
    assert lines[3] == "home-writable"
    assert lines[4].startswith("usage: mlflow-steps"), lines

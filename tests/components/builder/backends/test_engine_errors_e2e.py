"""Every error from an engine shows the engine's message, real buildah: a command that fails
inside the base (its Python probe, the install) ends in the error with buildah's own last
lines, even where its log was kept quiet (the probe's is)."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.support.builds import local_build_argv
from tests.support.images import BUILDAH_ENV, remove_local_images
from tests.support.oci import push_tiny_image

pytestmark = pytest.mark.e2e


def codeset(root):
    root.mkdir()
    (root / "MLproject").write_text("entry_points: {main: {command: python -c 'import six'}}\n")
    (root / "requirements.txt").write_text("six==1.17.0\n")
    return root


def build(tmp_path, registry, package_index, base: str, env: dict, *extra: str):
    out = tmp_path / "image"
    argv = local_build_argv(codeset(tmp_path / "codeset"), registry.host, base=base,
                            index_url=package_index.extra["url"],
                            repository=f"errors-{uuid.uuid4().hex[:12]}/trainer",
                            output=out)  # fmt: skip
    argv += ["--mlflow-requirement", "", *extra]
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert done.returncode == 1, done.stderr[-3000:]
    assert not out.exists() and done.stdout == ""
    error = done.stderr[done.stderr.index("mlflow-steps build: error:") :]
    assert "(it printed nothing)" not in error
    return error


@pytest.mark.usefixtures("base_images")  # the test session's buildah set-up
@pytest.mark.parametrize("layering", ["per-package", "single"])
def test_a_base_without_a_shell_fails_with_buildahs_message(
    layering, registry, package_index, tmp_path
):
    """A base with no files at all: buildah cannot start `sh` in it. The probe (per-package,
    its log quiet) and the Dockerfile's RUN (single) both end with what buildah said."""
    repository = f"bad-base-{uuid.uuid4().hex[:8]}/empty"
    digest = push_tiny_image(registry.host, repository, ["1"])
    base = f"{registry.host}/{repository}:1"
    try:
        error = build(tmp_path, registry, package_index, base, BUILDAH_ENV,
                      f"--layering={layering}")  # fmt: skip
    finally:
        # buildah pulled it to start the container: by tag (probe), by digest (FROM)
        for reference in (base, f"{registry.host}/{repository}@{digest}"):
            remove_local_images(reference)
    said = error.split("it said:\n", 1)[1]
    assert "sh" in said and ("not found" in said or "no such file" in said.lower()), error
    assert "No image was pushed and no output was written." in error
    if layering == "per-package":
        assert f"in a container of the base image {base}" in error


def test_buildahs_default_isolation_failing_here_shows_buildahs_reason(
    registry, package_index, base_images, tmp_path
):
    """The issue's case: BUILDAH_ISOLATION unset, so buildah runs the base's Python probe with
    its default (oci) isolation, which crun cannot provide on this machine. The error says what
    buildah said, and what to set."""
    env = {k: v for k, v in BUILDAH_ENV.items() if k != "BUILDAH_ISOLATION"}
    probe = subprocess.run(
        ["buildah", "from", "--quiet", "--tls-verify=false", base_images["debian"]],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    container = probe.stdout.split()[-1]
    try:
        works = subprocess.run(["buildah", "run", container, "--", "true"], capture_output=True,
                               text=True, env=env)  # fmt: skip
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, env=env)
    if works.returncode == 0:
        pytest.skip("buildah's default isolation works on this machine: nothing fails")
    error = build(tmp_path, registry, package_index, base_images["debian"], env,
                  "--layering=per-package")  # fmt: skip
    # buildah's own lines, as it printed them for the same failure just now
    own = [line for line in works.stderr.splitlines() if "level=error" in line or "Error:" in line]
    assert own, works.stderr
    for line in own:
        assert (line.split('msg="', 1)[-1] if "msg=" in line else line) in error, (line, error)
    assert error.startswith("mlflow-steps build: error: the base's Python probe, in a container")
    assert "set BUILDAH_ISOLATION=chroot" in error

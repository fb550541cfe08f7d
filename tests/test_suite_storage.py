"""The suite leaves buildah's storage as it found it (CI and sessions share the machine's disk)."""

from __future__ import annotations

import subprocess
import time

from tests.support import images
from tests.support.images import BUILDAH_ENV
from tests.support.require import require_root, require_tools


def buildah(*argv: str) -> str:
    done = subprocess.run(
        ["buildah", *argv], capture_output=True, text=True, env=BUILDAH_ENV, check=True
    )
    return done.stdout.strip()


def container(image: str) -> str:
    """A new working container's full ID."""
    return buildah("inspect", "--format", "{{.ContainerID}}", buildah("from", image))


def test_what_appears_in_the_storage_meanwhile_is_removed_and_nothing_else(tmp_path):
    require_root()
    require_tools("buildah")
    lock = tmp_path / "sessions.lock"
    kept = container("scratch")
    kept_image = buildah("commit", "--quiet", kept, "localhost/mlflow-steps-test/kept:1")
    try:
        with images.storage_left_as_found(lock):
            made = container("scratch")
            buildah("config", "--label", "made=inside", made)
            made_image = buildah("commit", "--quiet", made, "localhost/mlflow-steps-test/made:1")
            assert made_image in images._storage_ids("images")
        assert made not in images._storage_ids("containers")
        assert made_image not in images._storage_ids("images")
        assert kept in images._storage_ids("containers")
        assert kept_image in images._storage_ids("images")
    finally:
        subprocess.run(["buildah", "rm", kept], capture_output=True, env=BUILDAH_ENV)
        images.remove_local_images(kept_image)


def test_nothing_is_removed_while_another_session_runs(tmp_path):
    """Another session (holding the lock shared) may be using what appeared meanwhile."""
    require_root()
    require_tools("buildah")
    lock = tmp_path / "sessions.lock"
    other = subprocess.Popen(["flock", "--shared", str(lock), "sleep", "30"])
    try:
        for _ in range(100):
            if lock.exists():
                break
            time.sleep(0.05)
        with images.storage_left_as_found(lock):
            made = container("scratch")
        assert made in images._storage_ids("containers")
    finally:
        other.kill()
        subprocess.run(["buildah", "rm", made], capture_output=True, env=BUILDAH_ENV)

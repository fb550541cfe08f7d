"""Base images and wheels for the tests, from the stack (mlflow_steps.stack.images), cached in
the tests' own folder (MLFLOW_STEPS_TEST_CACHE); and images only tests make."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from mlflow_steps.stack import images
from mlflow_steps.stack.images import BUILDAH_ENV, remove_local_images, sh

CACHE = Path(os.environ.get("MLFLOW_STEPS_TEST_CACHE", Path.home() / ".cache/mlflow-steps-tests"))


def push_base_images(registry: str) -> dict[str, str]:
    """Push both base shapes to `registry`; returns {"debian": ref, "python": ref}."""
    return images.push_base_images(registry, CACHE)


def wheelhouse() -> Path:
    return images.wheelhouse(CACHE)


def push_derived_image(base: str, run: str, reference: str) -> str:
    """Build `FROM base` + `RUN run` with buildah and commit it straight to `reference` (a
    plain-http registry); returns the reference."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Dockerfile").write_text(f"FROM {base}\nRUN {run}\n")
        sh(
            "buildah", "build", "--tls-verify=false", "--tag", f"docker://{reference}", tmp,
            quiet=True,
        )  # fmt: skip
    return reference


def _storage_ids(kind: str) -> set[str]:
    """Full IDs in buildah's storage: kind "images" or "containers"."""
    untruncated = "--no-trunc" if kind == "images" else "--notruncate"
    done = subprocess.run(
        ["buildah", kind, "--quiet", untruncated], capture_output=True, text=True, env=BUILDAH_ENV
    )
    if done.returncode != 0:
        return set()
    return {word.removeprefix("sha256:") for word in done.stdout.split()}


SESSIONS_LOCK = Path(tempfile.gettempdir()) / "mlflow-steps-test-sessions.lock"


@contextlib.contextmanager
def storage_left_as_found(lock: Path = SESSIONS_LOCK):
    """Remove, on leaving, the working containers and images that appeared in buildah's storage
    meanwhile. Sessions and CI share this machine's storage: 263 images left by earlier runs
    (46 GB) filled the disk in the middle of a CI run. Buildah does not say who made an image,
    so nothing is removed while another session is in this context too (each holds `lock`
    shared; the last to leave, holding it alone, removes): that session's builds would lose
    their images ("image not known")."""
    if not shutil.which("buildah"):
        yield
        return
    with open(lock, "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_SH)
        containers, found = _storage_ids("containers"), _storage_ids("images")
        yield
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # another session is running: it may be using what appeared meanwhile
        new_containers = sorted(_storage_ids("containers") - containers)
        if new_containers:
            subprocess.run(["buildah", "rm", *new_containers], capture_output=True, env=BUILDAH_ENV)
        new_images = sorted(_storage_ids("images") - found)
        if new_images:
            remove_local_images(*new_images)

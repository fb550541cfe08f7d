"""Base images and wheels for the tests, from the stack (mlflow_steps.stack.images), cached in
the tests' own folder (MLFLOW_STEPS_TEST_CACHE); and images only tests make."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mlflow_steps.stack import images
from mlflow_steps.stack.images import BUILDAH_ENV, remove_local_images, sh  # noqa: F401

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

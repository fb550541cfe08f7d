"""Base images built here (no public registry is reachable): a Debian minbase with python3
(no `python`, PEP 668 system Python) and a python:3.x-shaped image derived from it (`python`
on PATH, pip usable system-wide). The debootstrap tarball is cached between runs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("MLFLOW_STEPS_TEST_CACHE", Path.home() / ".cache/mlflow-steps-tests"))
BUILDAH_ENV = {**os.environ, "BUILDAH_ISOLATION": "chroot"}

PYTHON_SHAPE_DOCKERFILE = """\
FROM {base}
RUN ln -s /usr/bin/python3 /usr/local/bin/python \\
 && rm -f /usr/lib/python3.*/EXTERNALLY-MANAGED \\
 && wheel="$(ls /usr/share/python-wheels/pip-*.whl)" \\
 && python3 "$wheel/pip" install --no-index --no-cache-dir "$wheel" && pip --version
"""

# What the end-to-end builds install: the sklearn example, MLflow, two versions of `six`, what
# MLflow's SQLite and PostgreSQL stores need, and the codeset cases (tests/cases: lightgbm, and
# the versions conda-pinned pins with `=`).
WHEELHOUSE_REQUIREMENTS = [
    "scikit-learn==1.9.*",
    "numpy==2.4.*",
    "pandas>=2",
    "lightgbm",
    "psycopg[binary]",
    "uv",
    "mlflow-skinny",
    "six==1.17.0",
    "pip",
    "setuptools",
    "wheel",
    "sqlalchemy",
    "alembic",
]
WHEELHOUSE_EXTRA_NO_DEPS = ["six==1.16.0"]


def sh(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, env=BUILDAH_ENV, **kwargs)


def debian_tarball() -> Path:
    tarball = CACHE / "debian-bookworm-python3.tar"
    if tarball.exists():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        rootfs = Path(tmp) / "rootfs"
        sh(
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            "bookworm",
            str(rootfs),
            stdout=subprocess.DEVNULL,
        )
        sh("tar", "-C", str(rootfs), "-cf", str(tarball) + ".part", ".")
        os.replace(str(tarball) + ".part", tarball)
    return tarball


def push_base_images(registry: str) -> dict[str, str]:
    """Push both shapes to `registry`; returns {"debian": ref, "python": ref}."""
    debian = f"{registry}/base/debian:bookworm"
    python = f"{registry}/base/python:3.11"
    with debian_tarball().open("rb") as tar:
        sh("podman", "import", "-", debian, stdin=tar, stdout=subprocess.DEVNULL)
    sh(
        "podman",
        "push",
        "--tls-verify=false",
        debian,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Dockerfile").write_text(PYTHON_SHAPE_DOCKERFILE.format(base=debian))
        sh("buildah", "build", "--tls-verify=false", "-t", python, tmp, stdout=subprocess.DEVNULL)
    sh(
        "buildah",
        "push",
        "--tls-verify=false",
        python,
        f"docker://{python}",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return {"debian": debian, "python": python}


def wheelhouse() -> Path:
    """Wheels for the end-to-end builds, downloaded once from PyPI with the host's pip."""
    key = hashlib.sha256(
        "\n".join(WHEELHOUSE_REQUIREMENTS + WHEELHOUSE_EXTRA_NO_DEPS).encode()
    ).hexdigest()[:12]
    house = CACHE / f"wheelhouse-{key}"
    if (house / ".complete").exists():
        return house
    house.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "-q", "-d", str(house)]
    subprocess.run([*pip, *WHEELHOUSE_REQUIREMENTS], check=True)
    subprocess.run([*pip, "--no-deps", *WHEELHOUSE_EXTRA_NO_DEPS], check=True)
    (house / ".complete").touch()
    return house


def remove_local_images(*refs: str) -> None:
    """Drop images from local storage so the next build cannot reuse them."""
    if shutil.which("buildah"):
        subprocess.run(["buildah", "rmi", "-f", *refs], capture_output=True, env=BUILDAH_ENV)


def push_derived_image(base: str, run: str, reference: str) -> str:
    """Build `FROM base` + `RUN run` with buildah and commit it straight to `reference` (a
    plain-http registry); returns the reference."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Dockerfile").write_text(f"FROM {base}\nRUN {run}\n")
        sh(
            "buildah", "build", "--tls-verify=false", "--tag", f"docker://{reference}", tmp,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    return reference

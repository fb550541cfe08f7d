"""What a build needs when no public registry or index is reachable: base images made here
(a debootstrapped Debian minbase with python3, and a python:3.x-shaped image derived from it)
and a wheelhouse for the local index. Both are cached in a folder the caller names."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mlflow_steps.components.processes import Finished, failure, run_logged

BUILDAH_ENV = {**os.environ, "BUILDAH_ISOLATION": "chroot"}

# Debian's python3 has no `python` command and a PEP 668 marker; this shape has both fixed,
# as the official python:3.x images have.
PYTHON_SHAPE_DOCKERFILE = """\
FROM {base}
RUN ln -s /usr/bin/python3 /usr/local/bin/python \\
 && rm -f /usr/lib/python3.*/EXTERNALLY-MANAGED \\
 && wheel="$(ls /usr/share/python-wheels/pip-*.whl)" \\
 && python3 "$wheel/pip" install --no-index --no-cache-dir "$wheel" && pip --version
"""

# The MLflow the index serves to installs that do not pin one (images, local environments).
PINNED_MLFLOW = "3.18.0"


def machine_mlflow() -> str | None:
    """This machine's MLflow version (`mlflow`, else `mlflow-skinny`); None without one. The
    index serves it too: a local environment for a store this machine's MLflow made is pinned to
    it (components/launcher/local_env.py), whatever MLflow the machine has."""
    for name in ("mlflow", "mlflow-skinny"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


# What the local index serves: the examples (scikit-learn, pandas, MLflow), what MLflow's SQLite
# and PostgreSQL stores need, and what the project's tests and benchmarks build (lightgbm, two
# versions of `six`, the versions tests/cases pin).
WHEELHOUSE_REQUIREMENTS = [
    "scikit-learn==1.9.*",
    "numpy==2.4.*",
    "pandas>=2",
    "lightgbm",
    "psycopg[binary]",
    "uv",
    "installer",  # the builder image's own dependencies (pyproject.toml)
    "isal",
    f"mlflow-skinny=={PINNED_MLFLOW}",
    "six==1.17.0",
    "pip",
    "setuptools",
    "wheel",
    "sqlalchemy",
    "alembic",
]
WHEELHOUSE_EXTRA_NO_DEPS = ["six==1.16.0"]
# Downloaded on their own (two versions of one distribution cannot be resolved together).
WHEELHOUSE_ALSO = sorted({f"mlflow-skinny=={machine_mlflow() or PINNED_MLFLOW}"})


def sh(*argv: str, quiet: bool = False, log_stdout: bool = True, stdin=None) -> Finished:
    """Run `argv` (buildah with chroot isolation). Its log goes to stderr, stdout included
    unless `log_stdout` is false (then dropped), nothing when `quiet`; when it fails, raises
    RuntimeError naming the command and ending with its last lines, shown or not."""
    done = run_logged(
        argv, env=BUILDAH_ENV, stdin=stdin, capture_stdout=not log_stdout, quiet=quiet
    )
    if done.returncode != 0:
        raise RuntimeError(failure(f"`{' '.join(argv)}`", done))
    return done


def debian_tarball(cache: Path, suite: str = "bookworm") -> Path:
    """A Debian `suite` minbase root filesystem with python3 (debootstrap, needs root), as a
    tar in `cache`, made once."""
    tarball = cache / f"debian-{suite}-python3.tar"
    if tarball.exists():
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        rootfs = Path(tmp) / "rootfs"
        sh(
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            suite,
            str(rootfs),
            log_stdout=False,
        )
        sh("tar", "-C", str(rootfs), "-cf", str(tarball) + ".part", ".")
        os.replace(str(tarball) + ".part", tarball)
    return tarball


def push_base_images(registry: str, cache: Path) -> dict[str, str]:
    """Push both base shapes to the plain-http `registry` (podman and buildah); returns
    {"debian": reference, "python": reference}."""
    debian = f"{registry}/base/debian:bookworm"
    python = f"{registry}/base/python:3.11"
    with debian_tarball(cache).open("rb") as tar:
        sh("podman", "import", "-", debian, stdin=tar, log_stdout=False)
    sh("podman", "push", "--tls-verify=false", debian, quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Dockerfile").write_text(PYTHON_SHAPE_DOCKERFILE.format(base=debian))
        sh("buildah", "build", "--tls-verify=false", "-t", python, tmp, log_stdout=False)
    sh("buildah", "push", "--tls-verify=false", python, f"docker://{python}", quiet=True)
    return {"debian": debian, "python": python}


def remove_local_images(*refs: str) -> None:
    """Drop images from buildah's local storage (vfs keeps a full copy of each)."""
    if shutil.which("buildah"):
        subprocess.run(["buildah", "rmi", "-f", *refs], capture_output=True, env=BUILDAH_ENV)


def wheelhouse(cache: Path) -> Path:
    """The wheels of WHEELHOUSE_REQUIREMENTS (with their dependencies, for this machine's
    Python), downloaded once from PyPI with pip into `cache`/wheelhouse-<hash>."""
    key = hashlib.sha256(
        "\n".join(WHEELHOUSE_REQUIREMENTS + WHEELHOUSE_EXTRA_NO_DEPS + WHEELHOUSE_ALSO).encode()
    ).hexdigest()[:12]
    house = cache / f"wheelhouse-{key}"
    if (house / ".complete").exists():
        return house
    house.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "-q", "-d", str(house)]
    also = [[*pip, requirement] for requirement in WHEELHOUSE_ALSO]
    for argv in (
        [*pip, *WHEELHOUSE_REQUIREMENTS],
        [*pip, "--no-deps", *WHEELHOUSE_EXTRA_NO_DEPS],
        *also,
    ):
        done = run_logged(argv)
        if done.returncode != 0:
            raise RuntimeError(failure("downloading the wheelhouse (`pip download`)", done))
    (house / ".complete").touch()
    return house

"""Session fixtures: real registry, real package index, real base images."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support import images, services
from tests.support.builds import build_with_cli
from tests.support.require import require, require_root, require_tools

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session", autouse=True)
def machine_left_as_found(tmp_path_factory):
    """What a session builds leaves buildah's storage with the session, and the local engine's
    environments stay in the session's folder (never in ~/.cache, which CI runs share)."""
    envs = os.environ.get("MLFLOW_STEPS_ENV_CACHE")
    os.environ["MLFLOW_STEPS_ENV_CACHE"] = str(tmp_path_factory.mktemp("local-envs"))
    with images.storage_left_as_found():
        yield
    if envs is None:
        del os.environ["MLFLOW_STEPS_ENV_CACHE"]
    else:
        os.environ["MLFLOW_STEPS_ENV_CACHE"] = envs


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    require_tools("docker-registry")
    service = services.start_registry(tmp_path_factory.mktemp("registry"))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory):
    require_tools("docker-registry", "htpasswd")
    service = services.start_registry(
        tmp_path_factory.mktemp("auth-registry"), users={"alice": "s3cret-pass"}
    )
    yield service
    service.stop()


@pytest.fixture(scope="session")
def package_index(tmp_path_factory):
    service = services.start_index(images.wheelhouse(), tmp_path_factory.mktemp("index"))
    yield service
    service.stop()


# The users of `auth_index` (htpasswd), with characters a URL must percent-encode.
INDEX_USERS = {"alice": "al1ce/pa$$@idx", "bob": "b0b-other-token"}


@pytest.fixture(scope="session")
def auth_index(tmp_path_factory):
    """The test wheelhouse behind an index that answers 401 to anonymous listings and downloads
    (pypiserver `-P htpasswd -a download,list`)."""
    require_tools("htpasswd")
    service = services.start_index(
        images.wheelhouse(), tmp_path_factory.mktemp("auth-index"), users=INDEX_USERS
    )
    yield service
    service.stop()


@pytest.fixture(scope="session")
def base_images(registry):
    require_root()
    require_tools("buildah", "podman", "debootstrap")
    require(
        Path("/etc/containers/storage.conf").exists(),
        "needs /etc/containers/storage.conf (bash scripts/setup-machine writes it)",
    )
    pushed = images.push_base_images(registry.host)
    yield pushed
    # Named after this session's registry port: no other session uses them. vfs storage keeps
    # a full copy of each, so leaving them behind fills the disk run after run.
    images.remove_local_images(*pushed.values())


@pytest.fixture
def buildah_env(monkeypatch):
    monkeypatch.setenv("BUILDAH_ISOLATION", "chroot")
    return os.environ


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    require_tools("moto_server")
    service = services.start_s3(tmp_path_factory.mktemp("s3"))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory, s3):
    service = services.start_tracking_server(tmp_path_factory.mktemp("tracking"), s3)
    yield service
    service.stop()


@pytest.fixture
def mlflow_env(tracking_server, s3, monkeypatch):
    """What the mlflow-tracking and mlflow-store extensions hand a FuseML step."""
    values = {
        "MLFLOW_TRACKING_URI": tracking_server.extra["url"],
        "MLFLOW_S3_ENDPOINT_URL": s3.extra["url"],
        **services.S3_CREDENTIALS,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture(scope="session")
def sklearn_build(tmp_path_factory, registry, package_index, base_images):
    """The sklearn example (plus six==1.16.0) built once with buildah, per-package (the
    default layering): (codeset, image)."""
    root = tmp_path_factory.mktemp("sklearn") / "sklearn"
    shutil.copytree(EXAMPLES / "sklearn-pip", root)
    with (root / "requirements.txt").open("a") as handle:
        handle.write("six==1.16.0\n")
    out = root.parent / "image"
    done = build_with_cli(
        root, registry, package_index, base_images["debian"], out, "--layering=per-package"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    yield root, out.read_text(), done
    # Per-package: ~11 layers (grouped), each a full copy of the tree below it in vfs storage
    # (GB); the tests that ran it pulled it there.
    images.remove_local_images(out.read_text())


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL from Debian's packages (postgresql-15) on 127.0.0.1."""
    require_root()
    require(services.POSTGRES_BIN.joinpath("postgres").exists(), "needs Debian's postgresql")
    # Not under pytest's 0700 temp root: the server runs as the `postgres` user.
    workdir = Path(tempfile.mkdtemp(prefix="mlflow-steps-postgres-"))
    workdir.chmod(0o755)
    service = services.start_postgres(workdir / "pg")
    yield service
    service.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def step_builder_image(registry, package_index, base_images, tmp_path_factory):
    """The buildah builder image, built by `mlflow-steps images` on the Debian base against the
    local index and pushed to the local registry; its reference is pinned by digest."""
    out = tmp_path_factory.mktemp("step-images") / "images.txt"
    argv = [
        sys.executable, "-m", "mlflow_steps", "images", "--registry", registry.host,
        "--variant", "buildah", "--base-image", base_images["debian"], "--insecure",
        "--pip-index-url", package_index.extra["url"], "--output", str(out),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, env=images.BUILDAH_ENV)
    assert done.returncode == 0, done.stderr[-4000:]
    (line,) = out.read_text().splitlines()
    variant, reference = line.split()
    assert variant == "buildah"
    return reference

"""Locks and `resolve`, all real: buildah builds on the Debian base against a pypiserver index,
pushed to the local registry, and the images' installed versions read in them.

Kept lean: the lock cases and the resolve codeset install `six` only (`mlflow_requirement=""`),
except one lock case, which installs the MLflow addition in its constrained step for real."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlflow_steps.components.builder.oci.registry import RegistryClient
from tests.support import images, services
from tests.support.builds import build_with_cli, run_in_image
from tests.support.images import BUILDAH_ENV

pytestmark = pytest.mark.e2e
CASES = Path(__file__).resolve().parents[3] / "cases"
SIX_VERSION = "import six, sys; print(six.__version__)"
NO_PYC = ["--compile-bytecode=false"]  # bytecode has nothing to do with locks: faster builds


def mlflow_steps(*argv: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mlflow_steps", *argv]
    return subprocess.run(command, capture_output=True, text=True, env=BUILDAH_ENV)


def pushes(registry) -> int:
    time.sleep(0.2)  # the registry writes its access log after answering
    return sum(r.startswith("PUT /v2/e2e/trainer/manifests/") for r in registry.requests_seen())


def tag_of(image_file: Path) -> str:
    return image_file.read_text().rpartition(":")[2]


def in_image(image: str, *command: str) -> str:
    done = run_in_image(image, *command)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize(
    ("case", "flags"),
    [
        ("uv-project", ["--mlflow-requirement", ""]),
        ("pylock", ["--mlflow-requirement", ""]),
        ("requirements-hashed", []),  # the MLflow addition, constrained by the lock
    ],
)
def test_lock_cases_build_with_exactly_the_locked_versions(
    case, flags, registry, package_index, base_images, tmp_path
):
    """The index has six 1.16.0 and 1.17.0; every lock names 1.16.0."""
    out = tmp_path / "image"
    base = base_images["debian"]
    done = build_with_cli(CASES / case, registry, package_index, base, out, *flags, *NO_PYC)
    assert done.returncode == 0, done.stderr[-4000:]
    image = out.read_text()
    try:
        assert in_image(image, "python", "-c", SIX_VERSION) == "1.16.0"
        kept = run_in_image(image, "cat", "/opt/mlflow-env/pylock.toml")
        assert (kept.returncode == 0) == (case != "requirements-hashed")
        if case != "requirements-hashed":
            assert 'version = "1.16.0"' in kept.stdout
        else:  # MLflow came in its own step, and left the lock's six alone
            assert "a lock without MLflow" in done.stderr
            assert in_image(image, "python", "-c", "import mlflow; print('ok')") == "ok"
    finally:
        images.remove_local_images(image)


def test_a_tampered_hash_fails_the_build_naming_the_package_and_pushes_nothing(
    registry, package_index, base_images, tmp_path
):
    codeset = tmp_path / "tampered"
    shutil.copytree(CASES / "requirements-hashed", codeset)
    lock = codeset / "requirements.txt"
    lock.write_text(lock.read_text().replace("8abb2f1d", "8abb2f1e"))
    pushed = pushes(registry)
    out = tmp_path / "image"
    done = build_with_cli(
        codeset, registry, package_index, base_images["debian"], out,
        "--mlflow-requirement", "", *NO_PYC,
    )  # fmt: skip
    assert done.returncode != 0
    assert "six" in done.stderr and "hash" in done.stderr.lower()
    assert "No image was pushed" in done.stderr
    assert not out.exists() and pushes(registry) == pushed


@pytest.fixture
def growing_index(tmp_path):
    """A real pypiserver over a folder of the wheelhouse's wheels without six 1.17.0; the test
    adds it later (pypiserver lists the folder on every request)."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    newer = None
    for wheel in images.wheelhouse().glob("*.whl"):
        if wheel.name.startswith("six-1.17.0"):
            newer = wheel
        else:
            (folder / wheel.name).symlink_to(wheel)
    assert newer is not None
    service = services.start_index(folder, tmp_path / "index")
    yield service, lambda: (folder / newer.name).symlink_to(newer)
    service.stop()


def test_resolve_follows_the_index_and_without_it_the_tag_stays(
    registry, base_images, growing_index, tmp_path
):
    """Tags from `inspect` (no build needed to know them); one real build, after the index
    gained six 1.17.0, with resolve."""
    index, publish_six_1_17 = growing_index
    codeset = tmp_path / "unpinned"
    codeset.mkdir()
    (codeset / "MLproject").write_text("entry_points: {main: {command: python t.py}}\n")
    (codeset / "requirements.txt").write_text("six\n")
    base = base_images["debian"]
    flags = ["--mlflow-requirement", "", "--python-version", "3.11", *NO_PYC]
    where = [
        "--registry", registry.host, "--insecure", "--repository", "e2e/trainer",
        "--base-image", base, "--pip-index-url", index.extra["url"], *flags,
    ]  # fmt: skip

    def inspect(*extra: str) -> tuple[str, str]:
        done = mlflow_steps("inspect", str(codeset), *where, *extra)
        assert done.returncode == 0, done.stderr
        tag = next(line.split()[-1] for line in done.stdout.splitlines() if line[:4] == "tag:")
        return tag, done.stdout

    before, lock_before = inspect("--resolve")
    loose, _ = inspect()
    assert 'name = "six"\nversion = "1.16.0"' in lock_before
    publish_six_1_17()
    after, lock_after = inspect("--resolve")
    assert after != before and 'name = "six"\nversion = "1.17.0"' in lock_after
    assert inspect()[0] == loose  # without resolve: one tag for ever, as documented

    out = tmp_path / "image"
    done = build_with_cli(codeset, registry, index, base, out, *flags, "--resolve")
    assert done.returncode == 0, done.stderr[-4000:]
    image = out.read_text()
    try:
        assert tag_of(out) == after and "not in the registry: building" in done.stderr
        assert in_image(image, "python", "-c", SIX_VERSION) == "1.17.0"
        kept = in_image(image, "cat", "/opt/mlflow-env/pylock.toml")
        assert 'name = "six"\nversion = "1.17.0"' in kept
        client = RegistryClient(registry.host, insecure=True)
        assert client.manifest_digest("e2e/trainer", before) is None  # never built
    finally:
        images.remove_local_images(image)


def test_a_lock_runs_with_the_local_engine(package_index, tmp_path):
    """The local engine installs the same plan: the lock, then MLflow in its constrained step;
    the run records the lock's six, and the environment keeps the lock."""
    env = {k: v for k, v in BUILDAH_ENV.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_STEPS_ENV_CACHE"] = str(tmp_path / "envs")
    argv = [
        sys.executable, "-m", "mlflow_steps", "run", str(CASES / "pylock"), "--engine", "local",
        "--pip-index-url", package_index.extra["url"], "--mlflow-artifact-path",
        "six-version.txt", "--output", str(tmp_path / "url"), *NO_PYC,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    artifact = Path((tmp_path / "url").read_text().removeprefix("file://"))
    assert artifact.read_text() == "1.16.0"
    (lock,) = (tmp_path / "envs").glob("*/venv/pylock.toml")
    assert 'version = "1.16.0"' in lock.read_text()

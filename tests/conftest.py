"""Session fixtures: real registry, real package index, real base images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import images, services
from tests.support.require import require, require_root, require_tools

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


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


@pytest.fixture(scope="session")
def base_images(registry):
    require_root()
    require_tools("buildah", "podman", "debootstrap")
    require(
        Path("/etc/containers/storage.conf").exists(), "needs /etc/containers/storage.conf (vfs)"
    )
    return images.push_base_images(registry.host)


@pytest.fixture
def buildah_env(monkeypatch):
    monkeypatch.setenv("BUILDAH_ISOLATION", "chroot")
    return os.environ

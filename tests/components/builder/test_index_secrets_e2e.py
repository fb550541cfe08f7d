"""Private indexes stay private, and the tag is the content. All real: a pypiserver that
requires HTTP Basic credentials for every listing and download (htpasswd, passlib), buildah
builds (chroot isolation) that push to a local registry, and the pushed image read back blob by
blob from that registry."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from mlflow_steps.components.builder.planning.indexes import NETRC_ENV
from tests.conftest import INDEX_USERS
from tests.support.builds import local_build_argv
from tests.support.images import BUILDAH_ENV, push_derived_image
from tests.support.oci import pushed_image, registry_digest

pytestmark = pytest.mark.e2e

USERS = INDEX_USERS


def small_codeset(root: Path, requirement: str = "six==1.17.0") -> Path:
    root.mkdir(parents=True)
    (root / "MLproject").write_text("entry_points: {main: {command: python -c 'import six'}}\n")
    (root / "requirements.txt").write_text(requirement + "\n")
    return root


def forms(user: str) -> list[str]:
    """Every shape a password could leak in: raw, percent-encoded in a URL, in a Basic header."""
    password = USERS[user]
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    return [password, quote(password, safe=""), basic]


def cli_build(
    codeset: Path, registry, base: str, index_url: str, out: Path, layering="single", **env: str
):
    """`mlflow-steps build --verbose` into secrets/trainer; no netrc but the one in `env`."""
    argv = local_build_argv(
        codeset,
        registry.host,
        base=base,
        index_url=index_url,
        repository="secrets/trainer",
        output=out,
    )
    # layering=single: the Dockerfile path, whose install RUN mounts the build secret.
    argv += ["--mlflow-requirement", "", "--compile-bytecode=false", "--verbose"]
    argv += [f"--layering={layering}"]
    environ = {k: v for k, v in BUILDAH_ENV.items() if k != NETRC_ENV}
    environ.update(NETRC=str(out.parent / "no-netrc"), **env)
    return subprocess.run(argv, capture_output=True, text=True, env=environ)


def manifest_puts(registry, repository: str) -> int:
    time.sleep(0.2)  # the registry writes its access log after answering
    return sum(r.startswith(f"PUT /v2/{repository}/manifests/") for r in registry.requests_seen())


@pytest.fixture(scope="module")
def alice_build(auth_index, registry, base_images, tmp_path_factory):
    """One build through the authenticated index, credentials in the URL (pip's form)."""
    root = tmp_path_factory.mktemp("alice")
    codeset = small_codeset(root / "codeset")
    url = auth_index.extra["url"].replace(
        "http://", f"http://alice:{quote(USERS['alice'], safe='')}@"
    )
    out = root / "image"
    return codeset, out, cli_build(codeset, registry, base_images["debian"], url, out)


def test_the_index_refuses_anonymous_downloads(auth_index):
    assert requests.get(auth_index.extra["url"] + "six/", timeout=10).status_code == 401


def test_credentials_reach_the_install_and_nothing_of_them_is_pushed_or_logged(alice_build):
    _codeset, out, done = alice_build
    assert done.returncode == 0, done.stderr[-3000:]
    assert "not in the registry: building" in done.stderr
    image = out.read_text()
    blobs = pushed_image(image)
    # The install did go through the authenticated index: six is in the environment's layer.
    assert any(b"site-packages/six.py" in data for data in blobs.values())
    config = json.loads(blobs["config"])
    history = " ".join(h.get("created_by", "") for h in config["history"])
    assert "--mount=type=secret,id=mlflow-steps-index" in history
    assert "PIP_" not in history and not any("PIP_" in e for e in config["config"].get("Env", []))
    for name, data in blobs.items():
        for secret in forms("alice"):
            assert secret.encode() not in data, f"password found in {name}"
    for secret in forms("alice"):
        assert secret not in done.stdout and secret not in done.stderr


def test_two_valid_credentials_give_one_tag_and_the_second_build_pushes_nothing(
    alice_build, auth_index, registry, base_images, tmp_path
):
    codeset, first_out, first = alice_build
    assert first.returncode == 0, first.stderr[-3000:]
    pushed = manifest_puts(registry, "secrets/trainer")
    netrc = f"machine 127.0.0.1 login bob password {USERS['bob']}\n"
    out = tmp_path / "image"
    again = cli_build(
        codeset, registry, base_images["debian"], auth_index.extra["url"], out, **{NETRC_ENV: netrc}
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing to build" in again.stderr
    assert out.read_text() == first_out.read_text()
    assert manifest_puts(registry, "secrets/trainer") == pushed
    for secret in forms("bob"):
        assert secret not in again.stdout + again.stderr


def labels(image: str) -> dict[str, str]:
    return json.loads(pushed_image(image)["config"])["config"]["Labels"]


def test_a_republished_base_gives_a_new_tag_a_new_build_and_its_digest_label(
    registry, package_index, base_images, tmp_path
):
    base = f"{registry.host}/secrets/base:1"
    codeset = small_codeset(tmp_path / "codeset")
    built = []
    for version in ("one", "two"):
        push_derived_image(base_images["debian"], f"echo {version} > /base-version", base)
        out = tmp_path / f"image-{version}"
        argv = local_build_argv(
            codeset,
            registry.host,
            base=base,
            index_url=package_index.extra["url"],
            repository="secrets/rebased",
            output=out,
        )
        argv += ["--mlflow-requirement", "", "--compile-bytecode=false"]
        done = subprocess.run(argv, capture_output=True, text=True, env=BUILDAH_ENV)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "not in the registry: building" in done.stderr
        image = out.read_text()
        assert labels(image)["org.opencontainers.image.base.name"] == base
        assert labels(image)["org.opencontainers.image.base.digest"] == registry_digest(base)
        built.append(image)
    assert built[0] != built[1]


def test_a_base_that_cannot_be_resolved_fails_naming_it(registry, package_index, tmp_path):
    codeset = small_codeset(tmp_path / "codeset")
    missing = f"{registry.host}/secrets/no-such-base:1"
    argv = local_build_argv(
        codeset, registry.host, base=missing, index_url=package_index.extra["url"]
    )
    done = subprocess.run(argv, capture_output=True, text=True, env=BUILDAH_ENV)
    assert done.returncode != 0 and done.stdout == ""
    assert (
        f"base image {missing}:" in done.stderr and "has no secrets/no-such-base:1" in done.stderr
    )


def test_per_package_layering_through_the_index_pushes_and_logs_no_credential(
    auth_index, registry, base_images, tmp_path
):
    """The default layering writes the image itself; uv gets the credentials in its working
    container only: no layer, config or log line holds them."""
    codeset = small_codeset(tmp_path / "codeset", "six==1.16.0")
    password = quote(USERS["alice"], safe="")
    url = auth_index.extra["url"].replace("http://", f"http://alice:{password}@")
    out = tmp_path / "image"
    done = cli_build(codeset, registry, base_images["debian"], url, out, "per-package")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "layering: single" not in done.stderr  # the per-package path was taken
    blobs = pushed_image(out.read_text())
    assert any(b"site-packages/six.py" in data for data in blobs.values())
    for name, data in blobs.items():
        for secret in forms("alice"):
            assert secret.encode() not in data, f"password found in {name}"
    for secret in forms("alice"):
        assert secret not in done.stdout + done.stderr

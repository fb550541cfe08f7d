"""Per-package layering into a registry with token auth, all real: Debian's distribution
verifies each request's Bearer token, issued by the token service of
tests/support/token_registry.py (which reads each `scope` parameter as one scope, the spec's
GET form). A cross-repository mount's challenge names two repositories, the target (pull, push)
and the layer cache (pull): the builder asks for both, so a bump still mounts its unchanged
layers instead of uploading them."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from mlflow_steps.components.builder.oci import referrers, sbom
from mlflow_steps.components.builder.oci.registry import RegistryClient
from mlflow_steps.components.builder.oci.registry_push import RegistryWriter, sha256_digest
from mlflow_steps.components.problems import StepError
from tests.components.builder.backends.layered.test_layered_e2e import blob_requests, codeset
from tests.support.builds import local_build_argv
from tests.support.images import BUILDAH_ENV, remove_local_images
from tests.support.require import require_tools
from tests.support.token_registry import start_token_registry

pytestmark = pytest.mark.e2e

USERS = {"bob": "t0ken-pass-9f3e"}


def grants(user: str, repository: str) -> set[str]:
    """bob may pull and push in team/*; nobody else may do anything."""
    return {"pull", "push"} if user == "bob" and repository.startswith("team/") else set()


@pytest.fixture
def token_registry(tmp_path):
    require_tools("docker-registry", "skopeo")
    registry, tokens, server = start_token_registry(tmp_path / "token-registry", USERS, grants)
    yield registry, tokens
    registry.stop()
    server.shutdown()


def manifest(host: str, image: str) -> dict:
    """The manifest of `image`, read with bob's tokens."""
    repository, _, tag = image.partition("/")[2].rpartition(":")
    client = RegistryClient(host, insecure=True, credentials=("bob", USERS["bob"]))
    found = RegistryWriter(client).get_manifest(repository, tag)
    assert found is not None
    return json.loads(found[0])


def sbom_of(host: str, image: str) -> bytes:
    """The SBOM referrer attached to `image`, read with bob's tokens."""
    repository, _, tag = image.partition("/")[2].rpartition(":")
    writer = RegistryWriter(RegistryClient(host, insecure=True, credentials=("bob", USERS["bob"])))
    found = writer.get_manifest(repository, tag)
    assert found is not None
    return referrers.find(writer, repository, found[2], sbom.MEDIA_TYPE)


def build(path: Path, host: str, index_url: str, base: str, repository: str, docker: Path):
    out = path.parent / f"{path.name}.image"
    argv = local_build_argv(path, host, base=base, index_url=index_url, repository=repository,
                            output=out)  # fmt: skip
    # The builder reads DOCKER_CONFIG's config.json, buildah REGISTRY_AUTH_FILE: the same file.
    env = {**BUILDAH_ENV, "DOCKER_CONFIG": str(docker),
           "REGISTRY_AUTH_FILE": str(docker / "config.json")}  # fmt: skip
    done = subprocess.run([*argv, "--mlflow-requirement", ""], capture_output=True, text=True,
                          env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out.read_text(), done.stderr


def test_a_bump_into_a_token_registry_mounts_its_unchanged_layers(
    token_registry, package_index, base_images, tmp_path
):
    registry, tokens = token_registry
    docker = tmp_path / "docker"
    docker.mkdir()
    entry = {"auth": base64.b64encode(f"bob:{USERS['bob']}".encode()).decode()}
    (docker / "config.json").write_text(json.dumps({"auths": {registry.host: entry}}))
    # The base lives in the same registry, in a repository bob may read (copied with skopeo).
    base = f"{registry.host}/team/base:bookworm"
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
         "--dest-authfile", str(docker / "config.json"), f"docker://{base_images['debian']}",
         f"docker://{base}"],
        check=True,
    )  # fmt: skip
    index = package_index.extra["url"]
    first, _ = build(codeset(tmp_path / "a", "packaging", "six==1.16.0"), registry.host, index,
                     base, "team/a", docker)  # fmt: skip
    since, asked = len(registry.requests_seen()), len(tokens.requests)
    second, log = build(codeset(tmp_path / "b", "packaging", "six==1.17.0"), registry.host,
                        index, base, "team/b", docker)  # fmt: skip

    assert "1 to install: six 1.17.0" in log
    old = {layer["digest"] for layer in manifest(registry.host, first)["layers"]}
    new_manifest = manifest(registry.host, second)
    new = {layer["digest"] for layer in new_manifest["layers"]}
    fresh = new - old  # six 1.17.0 and the lock
    assert len(fresh) == 2
    uploaded, mounted = blob_requests(registry, since, "team/b")
    # Besides: the SBOM referrer's blobs (its document, and the empty config once per repository).
    referrer = {sha256_digest(b"{}"), sha256_digest(sbom_of(registry.host, second))}
    assert uploaded == fresh | {new_manifest["config"]["digest"]} | referrer
    assert mounted >= new - fresh
    # The mount's token: one scope parameter per repository the challenge named.
    scopes = [scope for _, asked_for in tokens.requests[asked:] for scope in asked_for]
    assert "repository:team/mlflow-steps-layers:pull" in scopes
    assert all(" " not in scope for scope in scopes)
    assert {user for user, _ in tokens.requests[asked:]} == {"bob"}
    assert USERS["bob"] not in log
    remove_local_images(base)


def test_without_credentials_the_error_says_where_they_were_looked_for(
    token_registry, tmp_path, monkeypatch
):
    registry, _ = token_registry
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
    writer = RegistryWriter(RegistryClient(registry.host, insecure=True))
    with pytest.raises(StepError, match=f"no credentials for it were found .*{tmp_path}"):
        writer.upload("team/x", "sha256:" + "0" * 64, b"")


def test_threads_that_need_different_scopes_do_not_spoil_each_others_tokens(
    token_registry, tmp_path
):
    """As write_and_push does: HEADs (pull), uploads (push) and mounts (push + the source's
    pull; two sources, as the layer cache and the base) on one writer from several threads at
    once, each blob uploaded from a file."""
    from concurrent.futures import ThreadPoolExecutor

    from mlflow_steps.components.builder.oci.registry_push import sha256_digest

    registry, tokens = token_registry
    tokens.delay = 0.05  # widens the window between a thread's 401 and its retry
    writer = RegistryWriter(
        RegistryClient(registry.host, insecure=True, credentials=("bob", USERS["bob"]))
    )

    def one(number: int) -> bool:
        data = f"blob {number}".encode()
        digest = sha256_digest(data)
        path = tmp_path / f"blob-{number}"
        path.write_bytes(data)
        source = f"team/src{number % 2}"  # mounts from two sources: tokens of two scopes
        writer.has_blob(source, digest)
        writer.upload(source, digest, path)
        return writer.mount("team/dst", digest, source) and writer.has_blob("team/dst", digest)

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(one, range(48)))

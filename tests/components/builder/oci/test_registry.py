"""The registry client against a real registry (Debian's docker-registry, anonymous and with
htpasswd basic auth) and a real HTTP server that fails on purpose (retries, bearer tokens)."""

from __future__ import annotations

import base64
import json
import time

import pytest

from mlflow_steps.components.builder.oci.registry import (
    RegistryClient,
    credentials_for,
    parse_reference,
    resolve_base,
)
from mlflow_steps.components.problems import StepError
from tests.support.flaky import Behaviour, FlakyServer
from tests.support.oci import push_tiny_image
from tests.support.services import free_port


def client(host: str, **kwargs) -> RegistryClient:
    kwargs.setdefault("backoff", 0.01)
    kwargs.setdefault("credentials", None)
    return RegistryClient(host, insecure=True, **kwargs)


def test_anonymous_registry_tag_missing_then_present(registry):
    c = client(registry.host)
    assert c.manifest_digest("test/anon", "v1") is None
    digest = push_tiny_image(registry.host, "test/anon", ["v1"])
    assert c.manifest_digest("test/anon", "v1") == digest
    assert c.manifest_digest("test/anon", "v2") is None


def test_lookup_is_one_head_request_and_never_lists_tags(registry):
    push_tiny_image(registry.host, "test/count", ["a", "b", "c"])
    before = len(registry.requests_seen())
    client(registry.host).manifest_digest("test/count", "b")
    time.sleep(0.2)  # the registry writes its access log after answering
    assert registry.requests_seen()[before:] == ["HEAD /v2/test/count/manifests/b"]


def write_docker_config(tmp_path, host: str, user: str, password: str, style: str = "auth"):
    entry = (
        {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        if style == "auth"
        else {"username": user, "password": password}
    )
    (tmp_path / "config.json").write_text(json.dumps({"auths": {f"https://{host}": entry}}))
    return tmp_path


@pytest.mark.parametrize("style", ["auth", "username"])
def test_basic_auth_with_docker_config(auth_registry, tmp_path, monkeypatch, style):
    push_tiny_image(auth_registry.host, "test/auth", ["v1"], auth=("alice", "s3cret-pass"))
    monkeypatch.setenv(
        "DOCKER_CONFIG",
        str(write_docker_config(tmp_path, auth_registry.host, "alice", "s3cret-pass", style)),
    )
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    c = RegistryClient(auth_registry.host, insecure=True, backoff=0.01)
    assert c.credentials == ("alice", "s3cret-pass")
    assert c.manifest_digest("test/auth", "v1").startswith("sha256:")
    assert c.manifest_digest("test/auth", "nope") is None


def test_wrong_password_is_an_auth_error_not_not_found(auth_registry):
    c = client(auth_registry.host, credentials=("alice", "wrong"))
    with pytest.raises(StepError, match=r"denied \(HTTP 401"):
        c.manifest_digest("test/auth", "v1")


def test_no_credentials_says_where_it_looked(auth_registry, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(StepError, match="requires authentication and no credentials"):
        client(auth_registry.host).manifest_digest("test/auth", "v1")


def test_credentials_lookup_matches_host_only(tmp_path):
    path = tmp_path / "auth.json"
    path.write_text(
        json.dumps(
            {"auths": {"other:5000": {"auth": "eDp5"}, "http://mine:5000/v1/": {"auth": "YTpi"}}}
        )
    )
    assert credentials_for("mine:5000", [path]) == ("a", "b")
    assert credentials_for("absent", [path]) is None


def test_retries_server_errors_then_answers():
    behaviour = Behaviour(fail_first=2, fail_status=503, then_status=200)
    with FlakyServer(behaviour) as server:
        assert client(server.host, retries=3).manifest_digest("x", "t") == "sha256:" + "a" * 64
    assert len(behaviour.requests) == 3


def test_retries_rate_limiting():
    behaviour = Behaviour(fail_first=1, fail_status=429, then_status=404)
    with FlakyServer(behaviour) as server:
        assert client(server.host, retries=2).manifest_digest("x", "t") is None
    assert len(behaviour.requests) == 2


def test_gives_up_after_retries_with_a_clear_message():
    behaviour = Behaviour(fail_first=100, fail_status=502)
    with (
        FlakyServer(behaviour) as server,
        pytest.raises(StepError, match="HTTP 502 after 2 retries"),
    ):
        client(server.host, retries=2).manifest_digest("x", "t")
    assert len(behaviour.requests) == 3


def test_unreachable_registry():
    with pytest.raises(StepError, match="cannot connect"):
        client(f"127.0.0.1:{free_port()}", retries=1).manifest_digest("x", "t")


def test_bearer_token_flow_uses_docker_config_credentials():
    behaviour = Behaviour(bearer=("bob", "pw"), then_status=200)
    with FlakyServer(behaviour) as server:
        c = client(server.host, credentials=("bob", "pw"))
        assert c.manifest_digest("x", "t") == "sha256:" + "b" * 64
        with pytest.raises(StepError, match="refused the credentials"):
            client(server.host, credentials=("bob", "bad")).manifest_digest("x", "t")
    assert behaviour.requests[1].startswith("GET /token?service=flaky&scope=repository")


# --- base images ----------------------------------------------------------------------------


def test_base_tag_resolves_to_its_digest_with_one_head_request(registry):
    digest = push_tiny_image(registry.host, "base/tiny", ["1.0"])
    before = len(registry.requests_seen())
    base = resolve_base(f"{registry.host}/base/tiny:1.0", frozenset({registry.host}))
    time.sleep(0.2)  # the registry writes its access log after answering
    assert base.digest == digest and base.name == f"{registry.host}/base/tiny:1.0"
    assert base.pinned == f"{registry.host}/base/tiny@{digest}"
    assert registry.requests_seen()[before:] == ["HEAD /v2/base/tiny/manifests/1.0"]


def test_base_given_by_digest_is_used_as_is_without_a_request(registry):
    digest = "sha256:" + "ab" * 32
    before = len(registry.requests_seen())
    base = resolve_base(f"{registry.host}/base/absent@{digest}")
    time.sleep(0.2)
    assert base.digest == digest and base.pinned == f"{registry.host}/base/absent@{digest}"
    assert registry.requests_seen()[before:] == []


def test_a_base_that_cannot_be_resolved_is_an_error_naming_it(registry):
    missing = f"{registry.host}/base/missing:1"
    with pytest.raises(StepError, match=f"base image {missing}: .* has no base/missing:1"):
        resolve_base(missing, frozenset({registry.host}))
    port = free_port()
    with pytest.raises(StepError, match=f"base image 127.0.0.1:{port}/x:1: registry .*connect"):
        resolve_base(
            f"127.0.0.1:{port}/x:1",
            client=RegistryClient(f"127.0.0.1:{port}", insecure=True, retries=0, backoff=0.01),
        )
    with pytest.raises(StepError, match="is not an image reference"):
        parse_reference("Python:3.11")


def test_references_are_normalised_as_docker_does():
    hub = parse_reference("python:3.11")
    assert (hub.host, hub.repository, hub.tag) == ("registry-1.docker.io", "library/python", "3.11")
    assert hub.pinned("sha256:0") == "docker.io/library/python@sha256:0"
    conda = parse_reference("continuumio/miniconda3")
    assert (conda.repository, conda.tag) == ("continuumio/miniconda3", "latest")
    local = parse_reference("localhost:5000/team/base:1@sha256:" + "0" * 64)
    assert (local.host, local.repository, local.tag) == ("localhost:5000", "team/base", "1")


def test_docker_hub_credentials_are_found_under_the_index_key(tmp_path):
    path = tmp_path / "config.json"
    entry = {"auth": base64.b64encode(b"hubuser:hubpass").decode()}
    path.write_text(json.dumps({"auths": {"https://index.docker.io/v1/": entry}}))
    assert credentials_for("registry-1.docker.io", [path]) == ("hubuser", "hubpass")
    assert credentials_for("quay.io", [path]) is None

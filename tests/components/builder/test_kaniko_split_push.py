"""The Kaniko variant's `push` container (`split.push`, `mlflow-steps build --phase push`):
it pushes the OCI image layout the build container wrote, with a hand-written layout and job
here and the real registries (docker-registry; the htpasswd one where the credentials matter).
The shared folder is the build container's to write, so the push takes the registry and
repository from its own options, never from job.json, never overwrites a tag, and pushes
nothing from a layout or a job that fails a check.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from mlflow_steps.components.builder.backends import split
from mlflow_steps.components.builder.oci import referrers, sbom
from mlflow_steps.components.builder.oci.registry import RegistryClient
from mlflow_steps.components.builder.oci.registry_push import RegistryWriter
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.problems import StepError

from .oci.test_layout import write_layout
from .oci.test_registry import write_docker_config

SBOM = b'{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}'


def shared_folder(tmp_path, tag: str, marker: str = "x", **job) -> tuple:
    """DIR with job.json (what the download container writes), DIR/context's SBOM and
    DIR/layout (what the build container writes)."""
    downloads = tmp_path / "downloads"
    (downloads / "context" / sbom.SBOM_FILE).parent.mkdir(parents=True)
    (downloads / "context" / sbom.SBOM_FILE).write_bytes(SBOM)
    wrote = write_layout(downloads / "layout", marker=marker)
    split.write_job(downloads, {"tag": tag, "download": True, **job})
    return downloads, wrote


def test_push_takes_the_registry_from_its_options_and_attaches_the_sbom(
    auth_registry, tmp_path, monkeypatch
):
    monkeypatch.setenv(
        "DOCKER_CONFIG",
        str(write_docker_config(tmp_path, auth_registry.host, "alice", "s3cret-pass")),
    )
    tag = uuid.uuid4().hex[:24]  # an environment tag: 24 hex digits
    # job.json names another registry: the build container could have written it.
    downloads, wrote = shared_folder(
        tmp_path, tag, push_reference="evil.example/x:y", pull_reference="evil.example/x:y"
    )
    options = BuildOptions(
        registry=auth_registry.host, pull_registry="", repository="split/push", insecure=True
    )
    result = split.push(options, downloads)
    assert result.image == f"{auth_registry.host}/split/push:{tag}" and result.built
    assert result.digest == wrote["manifest"]["digest"]
    client = RegistryClient(auth_registry.host, insecure=True)
    assert client.manifest_digest("split/push", tag) == result.digest
    found = referrers.referrers(
        RegistryWriter(client), "split/push", result.digest, sbom.MEDIA_TYPE
    )
    assert len(found) == 1  # the SBOM, attached by the push container


def test_a_tag_the_registry_holds_is_not_overwritten(registry, tmp_path):
    tag = uuid.uuid4().hex[:24]  # an environment tag: 24 hex digits
    options = BuildOptions(
        registry=registry.host, pull_registry="", repository="split/keep", insecure=True
    )
    first, wrote = shared_folder(tmp_path / "one", tag, marker="first")
    assert split.push(options, first).digest == wrote["manifest"]["digest"]
    second, other = shared_folder(tmp_path / "two", tag, marker="second")
    result = split.push(options, second)
    assert not result.built and result.digest == wrote["manifest"]["digest"]
    assert other["manifest"]["digest"] != wrote["manifest"]["digest"]
    client = RegistryClient(registry.host, insecure=True)
    assert client.manifest_digest("split/keep", tag) == wrote["manifest"]["digest"]


@pytest.mark.parametrize("tag", ["../../other", "a" * 200, "", 7, "latest", "sha256-" + "a" * 64])
def test_a_job_without_a_valid_tag_pushes_nothing(registry, tmp_path, tag):
    downloads, _ = shared_folder(tmp_path, tag)
    options = BuildOptions(
        registry=registry.host, pull_registry="", repository="split/bad", insecure=True
    )
    time.sleep(0.2)
    before = len(registry.requests_seen())
    with pytest.raises(
        StepError, match=r"names no environment tag \(24 hex digits\); nothing pushed"
    ):
        split.push(options, downloads)
    time.sleep(0.2)
    assert registry.requests_seen()[before:] == []


def test_the_push_phase_refuses_a_hostile_layout_with_a_clear_error_and_no_output(
    registry, tmp_path
):
    tag = uuid.uuid4().hex[:24]  # an environment tag: 24 hex digits
    downloads, wrote = shared_folder(tmp_path, tag)
    layer = downloads / "layout" / "blobs" / "sha256" / wrote["layer"]["digest"].split(":")[1]
    layer.write_bytes(b"\0" * wrote["layer"]["size"])  # same size, other bytes
    out = tmp_path / "image"
    done = subprocess.run(
        [sys.executable, "-m", "mlflow_steps", "build", str(tmp_path), "--registry", registry.host,
         "--pull-registry", "", "--insecure", "--repository", "split/hostile", "--phase", "push",
         "--downloads", str(downloads), "--output", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "do not match its digest; refused" in done.stderr
    assert not out.exists()
    assert (
        RegistryClient(registry.host, insecure=True).manifest_digest("split/hostile", tag) is None
    )


def test_nothing_to_build_gives_the_image_the_download_step_found(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    digest = "sha256:" + "a" * 64
    split.write_job(downloads, {"image": "registry.example/team/env:abc", "digest": digest})
    assert split.install(BuildOptions(), downloads, layout=tmp_path / "layout") is None
    assert (tmp_path / "layout").is_dir()  # an output artifact (KFP) exists, empty
    result = split.push(BuildOptions(), downloads)
    assert (result.image, result.digest, result.built) == (
        "registry.example/team/env:abc",
        digest,
        False,
    )
    split.write_job(downloads, {"image": "not a reference!", "digest": digest})
    with pytest.raises(StepError, match="image"):
        split.push(BuildOptions(), downloads)
    (downloads / "job.json").write_text(json.dumps(["not", "a", "job"]))
    with pytest.raises(StepError, match="must run first"):
        split.push(BuildOptions(), downloads)


def test_layout_goes_with_the_install_or_push_phase(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mlflow_steps", "build", str(tmp_path), "--phase", "download",
         "--downloads", str(tmp_path / "d"), "--layout", str(tmp_path / "layout")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "--layout goes with --phase install or --phase push" in done.stderr
    assert not (tmp_path / "d").exists() and not (tmp_path / "layout").exists()


def test_with_a_job_folder_the_push_takes_tag_and_sbom_from_there_not_from_downloads(
    registry, tmp_path
):
    """The build container can rewrite anything in DIR (attack review: it named another
    environment's tag, to be pushed before that environment's own build, and its own SBOM).
    With `--job` (an emptyDir only the download and push containers mount), the push reads
    the job and the SBOM the download container kept there."""
    tag = uuid.uuid4().hex[:24]
    downloads, wrote = shared_folder(tmp_path, tag)
    job_folder = tmp_path / "job"
    job_folder.mkdir()
    split.keep_job(job_folder, {"tag": tag, "download": True}, downloads)
    # What the build container writes afterwards: another tag, another SBOM.
    victim = uuid.uuid4().hex[:24]
    split.write_job(downloads, {"tag": victim, "download": True})
    (downloads / "context" / sbom.SBOM_FILE).write_bytes(SBOM.replace(b"[]", b'[{"x": 1}]'))
    options = BuildOptions(
        registry=registry.host, pull_registry="", repository="split/job", insecure=True
    )
    result = split.push(options, downloads, job_folder=job_folder)
    assert result.image.endswith(f"/split/job:{tag}") and result.built
    assert result.digest == wrote["manifest"]["digest"]
    client = RegistryClient(registry.host, insecure=True)
    assert client.manifest_digest("split/job", victim) is None
    attached = referrers.find(RegistryWriter(client), "split/job", result.digest, sbom.MEDIA_TYPE)
    assert attached == SBOM  # the kept one, not what the build container wrote

"""Exact command lines per engine. Kaniko, docker and podman cannot run here (no cluster, no
Docker engine, crun cannot set RLIMIT_NPROC): their argv is unit-tested; buildah runs for real
in test_build_e2e.py."""

from __future__ import annotations

from pathlib import Path

from mlflow_steps.components.builder import engines

JOB = engines.BuildJob(
    dockerfile=Path("/ctx/Dockerfile"),
    context=Path("/ctx"),
    destination="reg.local:5000/mlflow/trainer:abc",
    digest_file=Path("/tmp/digest"),
    build_args={"PIP_INDEX_URL": "https://u:secret@idx/simple"},
    insecure=True,
    verbose=False,
    compressed_caching=True,
)


def test_kaniko_argv():
    (command,) = engines.kaniko(JOB)
    assert command.argv == [
        "/kaniko/executor",
        "--dockerfile=/ctx/Dockerfile",
        "--context=dir:///ctx",
        "--destination=reg.local:5000/mlflow/trainer:abc",
        "--digest-file=/tmp/digest",
        "--compressed-caching=true",
        "--single-snapshot",
        "--reproducible",
        "--verbosity=info",
        "--build-arg=PIP_INDEX_URL=https://u:secret@idx/simple",
        "--insecure",
        "--insecure-pull",
        "--skip-tls-verify",
        "--skip-tls-verify-pull",
    ]
    assert "secret" not in command.redacted(JOB.build_args)


def test_kaniko_defaults_follow_the_seed():
    job = engines.BuildJob(Path("/c/Dockerfile"), Path("/c"), "r/x:t", Path("/d"), verbose=True)
    argv = engines.kaniko(job)[0].argv
    assert "--compressed-caching=false" in argv and "--verbosity=debug" in argv
    assert not any(a.startswith("--insecure") for a in argv)


def test_buildah_commits_straight_to_the_registry_with_build_arg_values_from_the_env():
    (build,) = engines.buildah(JOB)
    assert build.argv == [
        "buildah",
        "build",
        "--tls-verify=false",
        "--format=oci",
        "--file=/ctx/Dockerfile",
        "--tag=docker://reg.local:5000/mlflow/trainer:abc",
        "--timestamp=0",
        "--build-arg=PIP_INDEX_URL",
        "/ctx",
    ]
    assert "secret" not in " ".join(build.argv)


def test_buildah_verbose_and_tls():
    job = engines.BuildJob(Path("/c/Dockerfile"), Path("/c"), "r/x:t", Path("/d"), verbose=True)
    argv = engines.buildah(job)[0].argv
    assert argv[:4] == ["buildah", "--log-level=debug", "build", "--tls-verify=true"]


def test_podman_argv():
    build, push = engines.podman(JOB)
    assert build.argv == [
        "podman",
        "build",
        "--tls-verify=false",
        "--format=oci",
        "--file=/ctx/Dockerfile",
        "--tag=reg.local:5000/mlflow/trainer:abc",
        "--timestamp=0",
        "--build-arg=PIP_INDEX_URL",
        "/ctx",
    ]
    assert push.argv == [
        "podman",
        "push",
        "--tls-verify=false",
        "--digestfile=/tmp/digest",
        "reg.local:5000/mlflow/trainer:abc",
    ]


def test_docker_argv_reads_the_digest_from_inspect():
    build, push, inspect = engines.docker(JOB)
    assert build.argv == [
        "docker",
        "build",
        "--file=/ctx/Dockerfile",
        "--tag=reg.local:5000/mlflow/trainer:abc",
        "--build-arg=PIP_INDEX_URL",
        "--build-arg=SOURCE_DATE_EPOCH=0",
        "/ctx",
    ]
    assert push.argv == ["docker", "push", "reg.local:5000/mlflow/trainer:abc"]
    assert inspect.prints_digest and inspect.argv[-1] == "reg.local:5000/mlflow/trainer:abc"


def test_auto_picks_kaniko_only_inside_its_image(monkeypatch):
    monkeypatch.setattr(engines.os.path, "exists", lambda p: p == engines.KANIKO_EXECUTOR)
    assert engines.pick_engine("auto") == "kaniko"
    monkeypatch.setattr(engines.os.path, "exists", lambda p: False)
    monkeypatch.setattr(
        engines.shutil, "which", lambda n: "/usr/bin/podman" if n == "podman" else None
    )
    assert engines.pick_engine("auto") == "podman"
    assert engines.pick_engine("docker") == "docker"


def test_the_image_timestamp_is_source_date_epoch_else_zero():
    assert engines.source_date_epoch({}) == 0
    assert engines.source_date_epoch({"SOURCE_DATE_EPOCH": "1700000000"}) == 1700000000
    assert engines.source_date_epoch({"SOURCE_DATE_EPOCH": "soon"}) == 0

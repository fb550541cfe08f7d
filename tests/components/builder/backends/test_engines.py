"""Exact command lines per engine. Kaniko, docker and podman cannot run here (no cluster, no
Docker engine, crun cannot set RLIMIT_NPROC): their argv is unit-tested; buildah runs for real
in test_build_e2e.py and test_index_secrets_e2e.py. Index settings are a build secret (a file),
never a build argument; build arguments are passed only when set."""

from __future__ import annotations

from pathlib import Path

from mlflow_steps.components.builder.backends import engines
from mlflow_steps.components.builder.backends.engines import Command

JOB = engines.BuildJob(
    dockerfile=Path("/ctx/Dockerfile"),
    context=Path("/ctx"),
    destination="reg.local:5000/mlflow/trainer:abc",
    digest_file=Path("/tmp/digest"),
    build_args={"BASE": "debian:12", "EMPTY": ""},
    secrets={"mlflow-steps-index": Path("/tmp/s/mlflow-steps-index")},
    masked=("s3cret",),
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
        "--build-arg=BASE=debian:12",
        "--secret=id=mlflow-steps-index,src=/tmp/s/mlflow-steps-index",
        "--insecure",
        "--insecure-pull",
        "--skip-tls-verify",
        "--skip-tls-verify-pull",
    ]
    assert "***" in Command(["x", "--password=s3cret"]).redacted(JOB.masked)


def test_kaniko_download_phase_pushes_nothing():
    """The Kaniko variant's download container (split.py): Kaniko with the secret, no
    destination, no push; its RUN copies the downloaded files out."""
    (command,) = engines.kaniko_no_push(JOB)
    assert command.argv == [
        "/kaniko/executor",
        "--dockerfile=/ctx/Dockerfile",
        "--context=dir:///ctx",
        "--no-push",
        "--single-snapshot",
        "--verbosity=info",
        "--build-arg=BASE=debian:12",
        "--secret=id=mlflow-steps-index,src=/tmp/s/mlflow-steps-index",
        "--insecure-pull",
        "--skip-tls-verify-pull",
    ]
    assert not any(arg.startswith(("--destination", "--digest-file")) for arg in command.argv)


def test_kaniko_build_phase_writes_an_oci_layout_and_pushes_nothing():
    """The Kaniko variant's build container (split.py): the one-container build's flags, but
    `--no-push --oci-layout-path DIR` in place of a destination (pkg/executor/push.go
    `DoPush` writes the layout before it returns on --no-push) and no push-side TLS flag."""
    (command,) = engines.kaniko_to_layout(JOB, Path("/shared/layout"))
    one_container = engines.kaniko(JOB)[0].argv
    assert "--no-push" in command.argv and "--oci-layout-path=/shared/layout" in command.argv
    assert not any(a.startswith(("--destination", "--digest-file")) for a in command.argv)
    assert "--insecure" not in command.argv and "--skip-tls-verify" not in command.argv
    kept = {"--no-push", "--oci-layout-path=/shared/layout"}
    assert [a for a in command.argv if a not in kept] == [
        a
        for a in one_container
        if not a.startswith(("--destination", "--digest-file"))
        and a not in ("--insecure", "--skip-tls-verify")
    ]


def test_buildah_stands_in_with_buildah_push_to_an_oci_layout():
    job = engines.BuildJob(
        dockerfile=JOB.dockerfile,
        context=JOB.context,
        destination="localhost/mlflow-steps-layout:abc",
        digest_file=JOB.digest_file,
    )
    build, push, remove = engines.buildah_to_layout(job, Path("/shared/layout"))
    assert "--tag=localhost/mlflow-steps-layout:abc" in build.argv
    assert push.argv == [
        "buildah",
        "push",
        "--remove-signatures",
        "localhost/mlflow-steps-layout:abc",
        "oci:/shared/layout",
    ]
    assert remove.argv == ["buildah", "rmi", "localhost/mlflow-steps-layout:abc"]


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
        "--layers=false",
        "--file=/ctx/Dockerfile",
        "--tag=docker://reg.local:5000/mlflow/trainer:abc",
        "--timestamp=0",
        "--build-arg=BASE",
        "--secret=id=mlflow-steps-index,src=/tmp/s/mlflow-steps-index",
        "/ctx",
    ]


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
        "--layers=false",
        "--file=/ctx/Dockerfile",
        "--tag=reg.local:5000/mlflow/trainer:abc",
        "--timestamp=0",
        "--build-arg=BASE",
        "--secret=id=mlflow-steps-index,src=/tmp/s/mlflow-steps-index",
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
        "--build-arg=BASE",
        "--secret=id=mlflow-steps-index,src=/tmp/s/mlflow-steps-index",
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


def test_no_build_argument_without_a_value_and_no_secret_without_settings():
    job = engines.BuildJob(Path("/c/Dockerfile"), Path("/c"), "r/x:t", Path("/d"))
    for engine in ("kaniko", "buildah", "podman", "docker"):
        argv = " ".join(engines.ENGINES[engine](job)[0].argv)
        assert "PIP_" not in argv and "--secret" not in argv
        assert argv.count("--build-arg") == (1 if engine == "docker" else 0)  # SOURCE_DATE_EPOCH


def test_kaniko_secrets_live_under_the_folder_it_never_snapshots():
    assert engines.secrets_folder("kaniko") == "/kaniko"
    assert engines.secrets_folder("buildah") is None

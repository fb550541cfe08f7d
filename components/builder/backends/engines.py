"""Build engines: the exact command lines that build and push the rendered recipe.

Build secrets (the index settings with their credentials) are files passed as `--secret
id=ID,src=FILE`: every engine mounts such a file for the `RUN --mount=type=secret,id=ID` that
asks for it, at /run/secrets/ID, and never writes it into a layer, the history or a label
(buildah, podman, docker with BuildKit, and Kaniko from osscontainertools v1.27, which copies
the file under /kaniko, a folder it never snapshots). Build arguments are only for values that
may be seen; they are passed only when set. Their values reach buildah, podman and docker
through the environment (`--build-arg NAME` reads `$NAME`); Kaniko takes `NAME=VALUE`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

KANIKO_EXECUTOR = "/kaniko/executor"
# Where the builder writes build secrets for Kaniko: Kaniko builds in its own root filesystem
# and snapshots all of it except /kaniko (and mount points).
KANIKO_DIR = "/kaniko"


def secrets_folder(engine: str) -> str | None:
    """The folder for build-secret files (None: the system's temporary folder)."""
    return KANIKO_DIR if engine == "kaniko" else None


@dataclass(frozen=True)
class BuildJob:
    dockerfile: Path
    context: Path
    destination: str
    digest_file: Path
    build_args: dict[str, str] = field(default_factory=dict)
    # Build secret id -> file (outside the context: a docker daemon receives the whole context).
    secrets: dict[str, Path] = field(default_factory=dict)
    # What a logged command line must mask (index passwords).
    masked: tuple[str, ...] = ()
    insecure: bool = False
    verbose: bool = False
    compressed_caching: bool = False
    # Reproducible images: every timestamp of the image (config, history, files in layers) is
    # this one, so identical inputs give an identical digest (see `source_date_epoch`).
    timestamp: int = 0


@dataclass(frozen=True)
class Command:
    argv: list[str]
    # docker writes no digest file: the digest is read from this command's output instead.
    prints_digest: bool = False

    def redacted(self, secrets: Iterable[str]) -> str:
        text = " ".join(self.argv)
        for value in sorted(secrets, key=len, reverse=True):
            if value:
                text = text.replace(value, "***")
        return text


def build_arg_flags(job: BuildJob, with_values: bool = False) -> list[str]:
    """`--build-arg=NAME` (the value read from the environment) or `--build-arg=NAME=VALUE`,
    for the arguments that are set only: an empty one is never passed."""
    return [
        f"--build-arg={name}={value}" if with_values else f"--build-arg={name}"
        for name, value in sorted(job.build_args.items())
        if value
    ]


def secret_flags(job: BuildJob) -> list[str]:
    return [f"--secret=id={name},src={path}" for name, path in sorted(job.secrets.items())]


def kaniko(job: BuildJob) -> list[Command]:
    argv = [
        KANIKO_EXECUTOR,
        f"--dockerfile={job.dockerfile}",
        f"--context=dir://{job.context}",
        f"--destination={job.destination}",
        f"--digest-file={job.digest_file}",
        f"--compressed-caching={str(job.compressed_caching).lower()}",
        "--single-snapshot",
        "--reproducible",
        f"--verbosity={'debug' if job.verbose else 'info'}",
    ]
    argv += build_arg_flags(job, with_values=True) + secret_flags(job)
    if job.insecure:
        argv += ["--insecure", "--insecure-pull", "--skip-tls-verify", "--skip-tls-verify-pull"]
    return [Command(argv)]


def kaniko_no_push(job: BuildJob) -> list[Command]:
    """Kaniko building `job` without pushing anything (the download phase of a split build,
    `split.py`, whose files its RUN copies out): no destination, no digest."""
    return [kaniko_unpushed(job, ["--single-snapshot"])]


def kaniko_to_layout(job: BuildJob, layout: Path) -> list[Command]:
    """Kaniko building `job` into the OCI image layout folder `layout`, pushing nothing (the
    install phase of a split build, `split.py`, whose container holds no push credentials).
    `--no-push --oci-layout-path DIR`: in osscontainertools/kaniko v1.27.0's (the image's
    executor) pkg/executor/push.go, `DoPush` writes the layout (go-containerregistry
    `layout.Write` + `AppendImage`) before it returns on `--no-push`; cmd/executor/cmd/root.go
    takes `--no-push` without `--destination`. The
    other flags are `kaniko`'s, so the image is the one a one-container build pushes."""
    flags = [
        f"--oci-layout-path={layout}",
        f"--compressed-caching={str(job.compressed_caching).lower()}",
        "--single-snapshot",
        "--reproducible",
    ]
    return [kaniko_unpushed(job, flags)]


def kaniko_unpushed(job: BuildJob, flags: list[str]) -> Command:
    """The Kaniko executor's command for `job` with `--no-push` and `flags`, then its
    verbosity, build arguments, secrets and insecure-pull flags."""
    argv = [
        KANIKO_EXECUTOR,
        f"--dockerfile={job.dockerfile}",
        f"--context=dir://{job.context}",
        "--no-push",
        *flags,
        f"--verbosity={'debug' if job.verbose else 'info'}",
    ]
    argv += build_arg_flags(job, with_values=True) + secret_flags(job)
    if job.insecure:
        argv += ["--insecure-pull", "--skip-tls-verify-pull"]
    return Command(argv)


def buildah_to_layout(job: BuildJob, layout: Path) -> list[Command]:
    """buildah building `job` into local storage as `job.destination` (a local name), then
    `buildah push NAME oci:DIR` (the OCI image layout `kaniko_to_layout` writes) and the local
    image removed: the stand-in for Kaniko where Kaniko cannot run (tests, a workstation)."""
    push = ["buildah", "push", "--remove-signatures", job.destination, f"oci:{layout}"]
    remove = ["buildah", "rmi", job.destination]
    return [
        Command(containers_build("buildah", job, job.destination)),
        Command(push),
        Command(remove),
    ]


LAYOUT_ENGINES = {"kaniko": kaniko_to_layout, "buildah": buildah_to_layout}


def buildah(job: BuildJob) -> list[Command]:
    """One command: buildah commits the image straight to the registry (`docker://` tag).

    No local copy is stored and pushed afterwards: with vfs storage that copy and its second
    diff cost about 11 s of a 32 s cold build here (benchmarks/cold_build.py). buildah build
    writes no digest file, so the builder reads the digest from the registry afterwards.
    """
    return [Command(containers_build("buildah", job, f"docker://{job.destination}"))]


def podman(job: BuildJob) -> list[Command]:
    """Build into local storage, then push: podman cannot run here (crun), so this path keeps
    the long-established two commands and is argv-tested only."""
    push = ["podman", "push", tls_verify(job), f"--digestfile={job.digest_file}", job.destination]
    return [Command(containers_build("podman", job, job.destination)), Command(push)]


def containers_build(program: str, job: BuildJob, tag: str) -> list[str]:
    argv = [program]
    if job.verbose:
        argv.append("--log-level=debug")
    # One layer for every instruction (buildah's default, podman's --layers=true otherwise):
    # the download phase's wheels, deleted by the install phase, never reach a layer.
    argv += ["build", tls_verify(job), "--format=oci", "--layers=false"]
    argv += [f"--file={job.dockerfile}", f"--tag={tag}"]
    argv.append(f"--timestamp={job.timestamp}")
    argv += build_arg_flags(job) + secret_flags(job)
    argv.append(str(job.context))
    return argv


def tls_verify(job: BuildJob) -> str:
    return f"--tls-verify={str(not job.insecure).lower()}"


def docker(job: BuildJob) -> list[Command]:
    build = ["docker", "build", f"--file={job.dockerfile}", f"--tag={job.destination}"]
    build += build_arg_flags(job) + secret_flags(job)
    build.append(f"--build-arg=SOURCE_DATE_EPOCH={job.timestamp}")  # BuildKit 0.11+
    build.append(str(job.context))
    inspect = [
        "docker",
        "image",
        "inspect",
        "--format={{index .RepoDigests 0}}",
        job.destination,
    ]
    return [Command(build), Command(["docker", "push", job.destination]), Command(inspect, True)]


def source_date_epoch(environ=os.environ) -> int:
    """The image timestamp: SOURCE_DATE_EPOCH (the reproducible-builds convention), else 0."""
    value = environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(value) if value.isdigit() else 0


# The engine-less build (layered/engineless.py): no Dockerfile, no engine command.
NO_ENGINE = "none"
ENGINES = {"kaniko": kaniko, "buildah": buildah, "podman": podman, "docker": docker}


def pick_engine(name: str) -> str:
    """The Dockerfile engine: `auto` is Kaniko inside its image, else the first of buildah,
    podman, docker found. (`auto` tries the engine-less build first, `NO_ENGINE`: see
    build.run_build.)"""
    if name != "auto":
        return name
    if os.path.exists(KANIKO_EXECUTOR):
        return "kaniko"
    for candidate in ("buildah", "podman", "docker"):
        if shutil.which(candidate):
            return candidate
    return "buildah"

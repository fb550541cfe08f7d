"""A build split across three containers, so that neither the index credentials nor the
registry's push credentials are ever in the container that runs the code a codeset brings
(issue 23): the Kaniko variant's steps.

Kaniko runs a Dockerfile's RUN lines in its own container, without isolation: a RUN that
builds an sdist could read whatever the executor's container holds, a build secret or a
registry credential included. So the Kaniko variant runs three containers that share one
folder, `downloads` (an emptyDir):

1. `download`, with the index secret (and the registry credentials, for the base's digest and
   the tag check): `mlflow-steps build PATH --phase download --downloads DIR`. It plans the
   build exactly as `build` does (same tag, same cache check). When the registry lacks the tag
   it writes DIR/context, the build context of the INSTALL-phase Dockerfile (`recipe.render`),
   and runs Kaniko without pushing on the DOWNLOAD-phase Dockerfile with the index secret: its
   one RUN is the download phase (nothing downloaded runs) and copies the downloaded files
   into DIR/context/mlflow-steps/. DIR/job.json says what the other containers do.
2. `build`, with no index secret, no index setting and no push credential: `mlflow-steps
   build PATH --phase install --downloads DIR`. Kaniko builds DIR/context into the OCI image
   layout DIR/layout without pushing (`engines.kaniko_to_layout`): the install phase, from
   the downloaded files only.
3. `push`, the project's step image again (not Kaniko), with the registry credentials:
   `mlflow-steps build PATH --phase push --downloads DIR` pushes DIR/layout with the
   project's own client (`oci.layout`, which treats the layout as hostile: the build
   container could write anything there), attaches the SBOM referrer and writes the outputs.

The tag is the one `build` computes (the whole Dockerfile, `recipe.BOTH`): a split build and
a buildah build of one codeset give one tag and, Kaniko being reproducible, one image.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ...problems import StepError
from ..build import (
    BuildResult,
    Log,
    attach_sbom_data,
    base_resolver,
    lock_licences,
    plan,
    run,
    stderr,
)
from ..oci import layout as layout_files
from ..oci.layout import push_layout
from ..oci.registry import RegistryClient
from ..oci.registry_push import RegistryWriter
from ..oci.sbom import SBOM_FILE
from ..planning.indexes import secret_files
from ..planning.options import BuildOptions
from ..planning.tag import TAG_LENGTH
from ..reading import grammar
from . import engines
from .recipe import DOWNLOAD, INSTALL, render

JOB = "job.json"
CONTEXT = "context"
LAYOUT = "layout"
PHASES = ("download", "install", "push")
JOB_LIMIT = 64 * 1024
SBOM_LIMIT = 32 * 1024 * 1024


def prepare(path: Path | str, options: BuildOptions, downloads: Path, log: Log = stderr) -> dict:
    """The download container's plan: writes DIR/context and DIR/download/Dockerfile when
    the registry lacks the tag, and returns the job (also written to DIR/job.json last):
    `{"image", "digest"}` when there is nothing to build, else `{"tag", "push_reference",
    "pull_reference", "download": bool}`. `downloads` must be an absolute folder."""
    downloads = checked_folder(downloads)
    for stale in (downloads / JOB, downloads / CONTEXT, downloads / "download", downloads / LAYOUT):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale)
        elif stale.exists() or stale.is_symlink():
            stale.unlink()
    the_plan = plan(path, options, base_resolver(options))
    job: dict[str, Any]
    if the_plan.recipe is None:
        log(f"docker_env: nothing to build, the image is {the_plan.pull_reference}")
        job = {"image": the_plan.pull_reference, "digest": ""}
        return write_job(downloads, job)
    for warning in the_plan.warnings:
        log(f"warning: {warning}")
    client = RegistryClient(options.registry, insecure=options.insecure)
    digest = client.manifest_digest(options.repository, the_plan.tag)
    if digest is not None:
        log(f"{the_plan.push_reference} is already in the registry: nothing to build")
        return write_job(downloads, {"image": the_plan.pull_reference, "digest": digest})
    context = downloads / CONTEXT
    downloads_something = the_plan.install.installer != "runtime"
    if downloads_something:
        found = lock_licences(the_plan, options)
        installing = render(the_plan.install, the_plan.base, INSTALL, licences=found)
        export_to = str(context / "mlflow-steps")
        fetching = render(the_plan.install, the_plan.base, DOWNLOAD, export_to=export_to)
        (downloads / "download").mkdir()
        (downloads / "download" / "Dockerfile").write_text(fetching.dockerfile, encoding="utf-8")
    else:
        installing = the_plan.recipe  # docker_env: no lock, no bill of materials
    installing.write_context(context)
    job = {
        "tag": the_plan.tag,
        "push_reference": the_plan.push_reference,
        "pull_reference": the_plan.pull_reference,
        "download": downloads_something,
    }
    return job


def download(
    path: Path | str,
    options: BuildOptions,
    downloads: Path,
    log: Log = stderr,
    job_folder: Path | None = None,
) -> None:
    """The `download` container: `prepare`, then Kaniko (no push) on DIR/download/Dockerfile
    with the index settings as the build secret; DIR/job.json is written once it succeeded.
    With `job_folder` (a volume the build container does not mount), the job and the bill of
    materials are written there too, for the push container to read."""
    downloads = checked_folder(downloads)
    job = prepare(path, options, downloads, log)
    if job_folder is not None:
        keep_job(checked_folder(job_folder), job, downloads)
    if "tag" not in job:
        return
    if job["download"]:
        engine = engines.pick_engine(options.engine)
        if engine != "kaniko":
            raise StepError(
                f"--phase download runs the download phase with Kaniko (the Kaniko builder "
                f"variant); engine {engine} builds in one phase: leave --phase unset"
            )
        index = options.index()
        with (
            tempfile.TemporaryDirectory(prefix="mlflow-steps-") as tmp,
            secret_files(index, engines.secrets_folder(engine)) as secrets,
        ):
            build = engines.BuildJob(
                dockerfile=downloads / "download" / "Dockerfile",
                context=downloads / CONTEXT,
                destination="",
                digest_file=Path(tmp) / "digest",
                secrets=secrets,
                masked=tuple(index.secret_values()),
                insecure=options.insecure,
                verbose=options.verbose,
            )
            for command in engines.kaniko_no_push(build):
                if build.verbose:
                    log("+ " + command.redacted(build.masked))
                run(command, build, engine)
        log(f"downloaded into {downloads / CONTEXT}; the build step installs from there")
    write_job(downloads, job)


def install(
    options: BuildOptions, downloads: Path, log: Log = stderr, layout: Path | None = None
) -> Path | None:
    """The `build` container: builds DIR/context as DIR/job.json says into the OCI image
    layout `layout` (default DIR/layout), pushing nothing: no build secret, no index setting
    and no registry credential is needed here (the base is pulled anonymously, or with the
    read-only pull credentials of its own). Returns the layout, or None when the job has
    nothing to build. StepError when the download container did not finish, or when the
    engine cannot write a layout (Kaniko does; buildah stands in for it)."""
    downloads = checked_folder(downloads)
    job = read_job(downloads)
    if "tag" not in job:
        log("nothing to build: the push step gives the image the download step found")
        if layout is not None:  # an output artifact (KFP) must exist
            Path(layout).mkdir(parents=True, exist_ok=True)
        return None
    engine = engines.pick_engine(options.engine)
    if engine not in engines.LAYOUT_ENGINES:
        raise StepError(
            f"--phase install writes an OCI image layout with Kaniko (the Kaniko builder "
            f"variant; buildah stands in for it); engine {engine} builds in one phase: leave "
            "--phase unset"
        )
    layout = Path(layout or downloads / LAYOUT)
    if layout.is_dir() and not layout.is_symlink():
        shutil.rmtree(layout)
    elif layout.exists() or layout.is_symlink():
        layout.unlink()
    log(f"{job['push_reference']} not in the registry: building from the downloaded files")
    with tempfile.TemporaryDirectory(prefix="mlflow-steps-") as tmp:
        build = engines.BuildJob(
            dockerfile=downloads / CONTEXT / "Dockerfile",
            context=downloads / CONTEXT,
            destination=f"localhost/mlflow-steps-layout:{job['tag']}",  # buildah's local name
            digest_file=Path(tmp) / "digest",
            insecure=options.insecure,
            verbose=options.verbose,
            compressed_caching=options.compressed_caching,
            timestamp=engines.source_date_epoch(),
        )
        for command in engines.LAYOUT_ENGINES[engine](build, layout):
            if build.verbose:
                log("+ " + command.redacted(build.masked))
            run(command, build, engine)
    log(f"built into the OCI image layout {layout}; the push step pushes it")
    return layout


def keep_job(job_folder: Path, job: dict, downloads: Path) -> None:
    """The job and the bill of materials (`prepare` wrote it into DIR/context), in
    `job_folder`, out of the build container's reach."""
    sbom = downloads / CONTEXT / SBOM_FILE
    kept = job_folder / Path(SBOM_FILE).name
    if kept.exists() or kept.is_symlink():
        kept.unlink()
    if sbom.is_file() and not sbom.is_symlink():
        shutil.copyfile(sbom, kept)
    write_job(job_folder, job)


def push(
    options: BuildOptions,
    downloads: Path,
    log: Log = stderr,
    layout: Path | None = None,
    job_folder: Path | None = None,
) -> BuildResult:
    """The `push` container, the only one with the registry's push credentials besides the
    download container, which ran nothing of the codeset's: pushes the OCI image layout the
    build container wrote (`layout`, default DIR/layout) to the tag DIR/job.json names, with
    the project's own client (`oci.layout.push_layout`: the layout is checked as hostile
    input, nothing pushed when a check fails), then attaches the SBOM referrer. The image
    goes to `options`' registry and repository whatever the shared folder says; a tag the
    registry already holds is never overwritten (the output names the image it holds). The
    result is `build`'s: the pull reference and the manifest's digest."""
    downloads = checked_folder(downloads)
    planned = checked_folder(job_folder) if job_folder is not None else downloads
    job = read_job(planned)
    if "tag" not in job:
        image, digest = job.get("image"), job.get("digest")
        if not isinstance(image, str) or not isinstance(digest, str):
            raise StepError(f"--phase push: {planned / JOB} is not a job the download step wrote")
        grammar.check_reference(image, f"{planned / JOB} image")
        if digest:
            grammar.check_digest(digest, f"{planned / JOB} digest")
        return BuildResult(image, digest, built=False)
    tag = job["tag"]
    if not isinstance(tag, str) or not re.fullmatch(f"[0-9a-f]{{{TAG_LENGTH}}}", tag):
        # Only what `environment_tag` gives: never `latest`, nor a referrers fallback tag
        # (`sha256-...`) that would list the build container's image as another's SBOM.
        raise StepError(
            f"--phase push: {planned / JOB} names no environment tag ({TAG_LENGTH} hex "
            "digits); nothing pushed"
        )
    push_reference = options.push_reference(tag)
    client = RegistryClient(options.registry, insecure=options.insecure)
    held = client.manifest_digest(options.repository, tag)
    if held is not None:
        log(f"{push_reference} is already in the registry ({held}): not overwritten")
        return BuildResult(options.pull_reference(tag), held, built=False)
    sbom_file = (
        planned / Path(SBOM_FILE).name
        if job_folder is not None
        else downloads / CONTEXT / SBOM_FILE
    )
    sbom = read_capped(sbom_file, SBOM_LIMIT) if sbom_file.is_file() else None
    writer = RegistryWriter(client)
    digest = push_layout(Path(layout or downloads / LAYOUT), writer, options.repository, tag)
    log(f"pushed {push_reference}@{digest}")
    if sbom is not None:
        attach_sbom_data(sbom, push_reference, options, digest, log)
    return BuildResult(options.pull_reference(tag), digest, built=True)


def read_job(downloads: Path) -> dict:
    try:
        job = json.loads(read_capped(downloads / JOB, JOB_LIMIT))
    except (OSError, ValueError, StepError):
        job = None
    if not isinstance(job, dict):
        raise StepError(
            f"{downloads / JOB} is missing or unreadable; the download step "
            "(--phase download --downloads the same folder) must run first, and succeed"
        )
    return job


def read_capped(path: Path, limit: int) -> bytes:
    """The bytes of the regular file `path` (not followed when a symlink), at most `limit`."""
    parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with layout_files.open_regular(parent, path.name, str(path)) as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(parent)
    if len(data) > limit:
        raise StepError(f"{path}: larger than {limit} bytes; refused")
    return data


def checked_folder(downloads: Path) -> Path:
    if not Path(downloads).is_absolute():
        raise StepError(f"--downloads {downloads}: give an absolute folder (the shared volume)")
    Path(downloads).mkdir(parents=True, exist_ok=True)
    return Path(downloads)


def write_job(downloads: Path, job: dict) -> dict:
    path = downloads / JOB
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(job, sort_keys=True), encoding="utf-8")
    partial.replace(path)
    return job

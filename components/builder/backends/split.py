"""A build split across two containers, so that the index credentials and the code a codeset
brings are never in one container (issue 23): the Kaniko variant's steps.

Kaniko runs a Dockerfile's RUN lines in its own container, without isolation: a RUN that
builds an sdist could read whatever the executor's container holds, a build secret included.
So the Kaniko variant runs two containers that share one folder, `downloads` (an emptyDir):

1. `download`, with the index secret (and the registry credentials, for the base's digest and
   the tag check): `mlflow-steps build PATH --phase download --downloads DIR`. It plans the
   build exactly as `build` does (same tag, same cache check). When the registry lacks the tag
   it writes DIR/context, the build context of the INSTALL-phase Dockerfile (`recipe.render`),
   and runs Kaniko without pushing on the DOWNLOAD-phase Dockerfile with the index secret: its
   one RUN is the download phase (nothing downloaded runs) and copies the downloaded files
   into DIR/context/mlflow-steps/. DIR/job.json says what the second container does.
2. `build`, with no index secret and no index setting: `mlflow-steps build PATH --phase install
   --downloads DIR`. It reads DIR/job.json and builds and pushes DIR/context, with no secret:
   the install phase, from the downloaded files only.

The tag is the one `build` computes (the whole Dockerfile, `recipe.BOTH`): a split build and
a buildah build of one codeset give one tag.
"""

from __future__ import annotations

import json
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
    run_job,
    stderr,
)
from ..oci.registry import RegistryClient
from ..oci.sbom import SBOM_FILE
from ..planning.indexes import secret_files
from ..planning.options import BuildOptions
from . import engines
from .recipe import DOWNLOAD, INSTALL, render

JOB = "job.json"
CONTEXT = "context"
PHASES = ("download", "install")


def prepare(path: Path | str, options: BuildOptions, downloads: Path, log: Log = stderr) -> dict:
    """The download container's plan: writes DIR/context and DIR/download/Dockerfile when
    the registry lacks the tag, and returns the job (also written to DIR/job.json last):
    `{"image", "digest"}` when there is nothing to build, else `{"tag", "push_reference",
    "pull_reference", "download": bool}`. `downloads` must be an absolute folder."""
    downloads = checked_folder(downloads)
    for stale in (downloads / JOB, downloads / CONTEXT, downloads / "download"):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
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


def download(path: Path | str, options: BuildOptions, downloads: Path, log: Log = stderr) -> None:
    """The `download` container: `prepare`, then Kaniko (no push) on DIR/download/Dockerfile
    with the index settings as the build secret; DIR/job.json is written once it succeeded."""
    downloads = checked_folder(downloads)
    job = prepare(path, options, downloads, log)
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


def install(options: BuildOptions, downloads: Path, log: Log = stderr) -> BuildResult:
    """The `build` container: builds and pushes DIR/context as DIR/job.json says, with no
    build secret and no index setting (whatever `options` hold); the digest is read from the
    registry. StepError when the download container did not finish."""
    downloads = checked_folder(downloads)
    try:
        job = json.loads((downloads / JOB).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise StepError(
            f"--phase install: {downloads / JOB} is missing or unreadable; the download step "
            "(--phase download --downloads the same folder) must run first, and succeed"
        ) from None
    if "tag" not in job:
        return BuildResult(job["image"], job["digest"], built=False)
    engine = engines.pick_engine(options.engine)
    # Read before the build: the install phase runs the codeset's build code in Kaniko's own
    # container, where the shared folder is writable.
    sbom_file = downloads / CONTEXT / SBOM_FILE
    sbom = sbom_file.read_bytes() if sbom_file.is_file() else None
    log(f"{job['push_reference']} not in the registry: building from the downloaded files")
    with tempfile.TemporaryDirectory(prefix="mlflow-steps-") as tmp:
        build = engines.BuildJob(
            dockerfile=downloads / CONTEXT / "Dockerfile",
            context=downloads / CONTEXT,
            destination=job["push_reference"],
            digest_file=Path(tmp) / "digest",
            insecure=options.insecure,
            verbose=options.verbose,
            compressed_caching=options.compressed_caching,
            timestamp=engines.source_date_epoch(),
        )
        run_job(build, engine, log)
    client = RegistryClient(options.registry, insecure=options.insecure)
    digest = client.manifest_digest(options.repository, job["tag"])
    if digest is None:
        raise StepError(
            f"the build engine reported success, but {job['push_reference']} is not in the "
            "registry; check that the engine pushes to the registry the builder queries"
        )
    if sbom is not None:
        attach_sbom_data(sbom, job["push_reference"], options, digest, log)
    return BuildResult(job["pull_reference"], digest, built=True)


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

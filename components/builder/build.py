"""The builder step: inspect, render, tag, ask the registry, build and push when missing."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..problems import StepError
from . import engines
from .codeset import Codeset, load_codeset
from .indexes import secret_files
from .options import BuildOptions
from .plan import InstallPlan
from .recipe import Recipe, render
from .registry import PinnedBase, RegistryClient, parse_reference, resolve_base
from .resolution import resolved_plan
from .tag import environment_tag

Log = Callable[[str], None]


# A child's stdout sent to this process's stderr (file descriptor 2): logs, never outputs.
STDERR = 2


def stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Plan:
    """A codeset, its install plan, the Dockerfile recipe rendered from it (None for
    docker_env) and the tag and references that follow."""

    codeset: Codeset
    install: InstallPlan
    recipe: Recipe | None
    tag: str
    push_reference: str
    pull_reference: str

    @property
    def warnings(self) -> list[str]:
        """What MLflow accepts and the builder decided for the user: inspect shows it, build
        logs it."""
        return [*self.codeset.warnings, *self.install.notes]


@dataclass
class BuildResult:
    image: str
    digest: str
    built: bool


Resolver = Callable[[str], PinnedBase]


def base_resolver(options: BuildOptions, retries: int = 4) -> Resolver:
    """Base image name -> PinnedBase, from the base's registry (plain http for the builder's
    own registries when `insecure`); `retries` as RegistryClient's."""
    hosts = {options.registry, options.pull_registry} if options.insecure else set()
    insecure = frozenset(hosts - {""})

    def pin(name: str) -> PinnedBase:
        host = parse_reference(name).host
        client = RegistryClient(host, insecure=host in insecure, retries=retries)
        return resolve_base(name, insecure, client)

    return pin


def plan(path: Path | str, options: BuildOptions, pin_base: Resolver | None = None) -> Plan:
    """codeset -> environment -> install plan (resolved with `resolve`) -> recipe and tag.
    With `pin_base` (every image build: `base_resolver`), the base is resolved to its digest
    first (one registry request), the recipe pulls it by that digest and the tag hashes it;
    without, no registry is asked (the local engine, which never pulls a base)."""
    codeset = load_codeset(path, options.context)
    install = codeset.environment.install_plan(options)
    if options.resolve:
        # The resolution runs here, with the index credentials in uv's environment only.
        install = resolved_plan(install, options.index().install_env(), options.python_version)
    if not install.builds:
        image = install.base_image
        return Plan(codeset, install, None, "", image, image)
    base = pin_base(install.base_image) if pin_base else None
    recipe = render(install, base)
    index = options.index().public()
    tag = environment_tag(install, recipe.dockerfile, index, base.digest if base else "")
    return Plan(
        codeset, install, recipe, tag, options.push_reference(tag), options.pull_reference(tag)
    )


def build(path: Path | str, options: BuildOptions, log: Log = stderr) -> BuildResult:
    """Resolve the base (one registry request), ask the registry for the tag (one more): a
    cache hit ends here; else build, push and read the digest the tag names."""
    the_plan = plan(path, options, base_resolver(options))
    if the_plan.recipe is None:
        log(f"docker_env: nothing to build, the image is {the_plan.pull_reference}")
        return BuildResult(the_plan.pull_reference, "", built=False)
    for warning in the_plan.warnings:
        log(f"warning: {warning}")
    client = RegistryClient(options.registry, insecure=options.insecure)
    digest = client.manifest_digest(options.repository, the_plan.tag)
    if digest is not None:
        log(f"{the_plan.push_reference} is already in the registry: nothing to build")
        return BuildResult(the_plan.pull_reference, digest, built=False)
    log(f"{the_plan.push_reference} not in the registry: building")
    reported = run_build(the_plan, options, log)
    digest = tagged_digest(client, the_plan, options)
    if reported and reported != digest:
        log(
            f"the tag now names {digest}, not the {reported} this build pushed: another builder "
            "pushed the same tag meanwhile; the output is the tagged manifest"
        )
    return BuildResult(the_plan.pull_reference, digest, built=True)


def tagged_digest(client: RegistryClient, the_plan: Plan, options: BuildOptions) -> str:
    """The digest the tag names after the push: what the output must name, even when two
    builders raced on one tag (builds are reproducible, so they normally agree)."""
    digest = client.manifest_digest(options.repository, the_plan.tag)
    if digest is None:
        raise StepError(
            f"the build engine reported success, but {the_plan.push_reference} is not in the "
            "registry; check that the engine pushes to the same registry the builder queries "
            "(registry, insecure) and that its credentials allow pushing"
        )
    return digest


def single_layer_reason(install: InstallPlan, options: BuildOptions) -> str:
    """Why this build cannot be per-package, known before anything runs ("" when it can)."""
    if options.layering != "per-package":
        return ""
    if install.installer == "conda":
        return "env_manager=conda (conda installs into the base's own environment)"
    if install.installer != "venv":
        return f"a {install.kind} image is not a venv"
    if install.system_packages:
        return "system_packages is set (apt-get may change any file of the base)"
    engine = engines.pick_engine(options.engine)
    if engine != "buildah":
        return f"the {engine} engine builds a Dockerfile; per-package layers need buildah"
    return ""


def engineless_reason(install: InstallPlan, options: BuildOptions) -> str:
    """Why the engine-less build cannot build this plan, known before anything runs ("" when
    it may: what only the resolution tells, sdists, comes later as a `Fallback`)."""
    if install.installer == "conda":
        return "env_manager=conda (conda installs into the base's own environment)"
    if install.installer != "venv":
        return f"a {install.kind} image is not a venv"
    if install.system_packages:
        return "system_packages is set (apt-get runs in the base)"
    if options.layering != "per-package":
        return "layering=single (one layer, from a Dockerfile)"
    return ""


def build_without_engine(the_plan: Plan, options: BuildOptions, log: Log) -> str | None:
    """The engine-less build when it applies (`--engine none`, or `auto`): its digest, or None
    when `auto` goes on with an engine (logged once, with the reason). With `none`, a codeset
    it cannot build is a StepError naming the reason and the builder to use instead."""
    reason = engineless_reason(the_plan.install, options)
    if not reason:
        # Imported here: a cache hit never assembles layers, and it is CLI start-up time.
        from .layered.assemble import Fallback
        from .layered.engineless import build_engineless

        try:
            return build_engineless(the_plan.install, options, the_plan.tag, log)
        except Fallback as why:
            reason = str(why)
    if options.engine == engines.NO_ENGINE:
        raise StepError(
            f"engine none (the unprivileged builder) cannot build this codeset: {reason}. "
            "Use the buildah or Kaniko builder (mlflow-builder-buildah / mlflow-builder-kaniko, "
            "or --engine buildah / kaniko); nothing was pushed"
        )
    log(f"engine: not engine-less ({reason}); building with {engines.pick_engine('auto')}")
    return None


def run_build(the_plan: Plan, options: BuildOptions, log: Log) -> str:
    """Build and push; the index settings (credentials included) reach the install step as a
    build secret only (`indexes.secret_files`), never as a build argument."""
    assert the_plan.recipe is not None
    if options.engine in (engines.NO_ENGINE, "auto"):
        built = build_without_engine(the_plan, options, log)
        if built is not None:
            return built
    engine = engines.pick_engine(options.engine)
    if options.layering == "per-package":
        reason = single_layer_reason(the_plan.install, options)
        if not reason:
            # Imported here: a cache hit never assembles layers, and it is CLI start-up time.
            from .layered.assemble import Fallback, build_layered

            try:
                return build_layered(the_plan.install, options, the_plan.tag, log)
            except Fallback as why:
                reason = str(why)
        log(f"layering: single, not per-package: {reason}")
    index = options.index()
    with (
        tempfile.TemporaryDirectory(prefix="mlflow-steps-") as tmp,
        secret_files(index, engines.secrets_folder(engine)) as secrets,
    ):
        context = the_plan.recipe.write_context(Path(tmp) / "context")
        job = engines.BuildJob(
            dockerfile=context / "Dockerfile",
            context=context,
            destination=the_plan.push_reference,
            digest_file=Path(tmp) / "digest",
            secrets=secrets,
            masked=tuple(index.secret_values()),
            insecure=options.insecure,
            verbose=options.verbose,
            compressed_caching=options.compressed_caching,
            timestamp=engines.source_date_epoch(),
        )
        return run_job(job, engine, log)


def run_job(job: engines.BuildJob, engine: str, log: Log) -> str:
    """Run the engine's commands for `job`; returns the digest it reports ("" when none)."""
    printed = ""
    for command in engines.ENGINES[engine](job):
        if job.verbose:
            log("+ " + command.redacted(job.masked))
        printed = run(command, job, engine)
    if job.digest_file.exists():
        return job.digest_file.read_text().strip()
    return printed.rpartition("@")[2].strip()  # "" when the engine gives no digest


def run(command: engines.Command, job: engines.BuildJob, engine: str) -> str:
    """Run one engine command; returns its stdout when it prints the digest. With index
    credentials in play, both output streams pass through a mask on their way out: an
    installer that echoes a URL it cannot parse must not print the token in it."""
    env = {**os.environ, **job.build_args}
    masked = job.masked
    pipe = subprocess.PIPE
    try:
        process = subprocess.Popen(
            command.argv,
            env=env,
            # The engine's log goes to stderr: stdout carries the step's output only.
            stdout=pipe if (command.prints_digest or masked) else STDERR,
            stderr=pipe if masked else None,
            text=True,
            errors="replace",
        )
    except FileNotFoundError:
        raise StepError(
            f"build engine `{engine}`: `{command.argv[0]}` is not installed here; install it "
            "or choose another engine (kaniko, buildah, podman, docker)"
        ) from None
    kept: list[str] = []
    relays = [
        threading.Thread(target=relay, args=(stream, sink, masked, keep))
        for stream, sink, keep in (
            (process.stdout, sys.stderr, kept if command.prints_digest else None),
            (process.stderr, sys.stderr, None),
        )
        if stream is not None
    ]
    for thread in relays:
        thread.start()
    for thread in relays:
        thread.join()
    if process.wait() != 0:
        raise StepError(
            f"build engine `{engine}` failed (exit {process.returncode}) running "
            f"`{command.redacted(masked)}`; its output above shows why. No image was "
            "pushed and no output was written."
        )
    return "".join(kept)


def relay(stream: IO[str], sink: IO[str], masked: tuple[str, ...], keep: list[str] | None) -> None:
    """Copy `stream` line by line, each `masked` value replaced by ***, into `keep` (a
    command's captured output) or else `sink`."""
    for line in stream:
        for value in masked:
            line = line.replace(value, "***")
        if keep is not None:
            keep.append(line)
        else:
            sink.write(line)
            sink.flush()
    stream.close()

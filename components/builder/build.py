"""The builder step: inspect, render, tag, ask the registry, build and push when missing."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..problems import StepError
from ..processes import failure, run_logged
from .backends import engines
from .backends.recipe import Recipe, environment_sbom, render
from .oci import referrers, sbom
from .oci.registry import PinnedBase, RegistryClient, parse_reference, resolve_base
from .oci.registry_push import RegistryWriter
from .oci.sbom import SBOM_FILE
from .planning.core_metadata import licences
from .planning.indexes import plain_http_problems, secret_files
from .planning.options import BuildOptions
from .planning.plan import InstallPlan
from .planning.platforms import Platform, parse_platforms, refuse_emulation
from .planning.resolution import read_pylock, resolved_plan
from .planning.tag import environment_tag
from .reading import grammar
from .reading.codeset import Codeset, load_codeset

Log = Callable[[str], None]


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
    # The base the recipe pulls, pinned by digest (None: docker_env, or no base resolved).
    base: PinnedBase | None = None
    # The `platforms` input when the image is an index (engine none or auto); () for one
    # manifest of the base's own platform.
    platforms: tuple[Platform, ...] = ()

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
    without, no registry is asked (the local engine, which never pulls a base). Every input
    is checked against its grammar first (`grammar.check_options`): StepError, nothing run."""
    grammar.check_options(options)
    codeset = load_codeset(path, options.context)
    install = codeset.environment.install_plan(options)
    # The requirement sets and every constraints file they read (`-c`), as pip reads both.
    texts = [(r.name, list(r.lines)) for r in install.requirement_sets] + install.constraints
    plain = [
        problem
        for where, lines in texts
        for problem in plain_http_problems(
            lines, options.pip_index_url, options.pip_extra_index_url,
            options.pip_trusted_host, where,
        )
    ]  # fmt: skip
    if plain:
        raise StepError(plain)
    if install.base_image:
        grammar.check_reference(install.base_image, f"{codeset.environment.where}: base image")
    platforms = index_platforms(install, options)
    if platforms:
        # One lock for every platform, before the tag: the tag follows it.
        install = resolved_plan(
            install, options.index().install_env(), options.python_version, universal=True
        )
    elif options.resolve:
        # The resolution runs here, with the index credentials in uv's environment only.
        install = resolved_plan(install, options.index().install_env(), options.python_version)
    if not install.builds:
        image = install.base_image
        return Plan(codeset, install, None, "", image, image)
    base = pin_base(install.base_image) if pin_base else None
    recipe = render(install, base)
    index = options.index().public()
    tag = environment_tag(install, recipe.dockerfile, index, base.digest if base else "",
                          tuple(map(str, platforms)))  # fmt: skip
    return Plan(
        codeset,
        install,
        recipe,
        tag,
        options.push_reference(tag),
        options.pull_reference(tag),
        base,
        platforms,
    )


def index_platforms(install: InstallPlan, options: BuildOptions) -> tuple[Platform, ...]:
    """The platforms of the image index to build (the `platforms` input), () for one
    manifest. An engine (buildah, podman, docker, kaniko) builds this machine's platform only
    (it runs commands in the base: another CPU would need emulation): asked for another, a
    StepError at once; asked for this machine's alone, the single-manifest build. With engine
    none or auto, the engine-less build writes every platform: a codeset it cannot build is a
    StepError naming why (no engine can stand in)."""
    platforms = parse_platforms(options.platforms)
    if not platforms:
        return ()
    if options.engine not in (engines.NO_ENGINE, "auto"):
        refuse_emulation(platforms, options.engine)
        return ()
    if not install.builds:
        return ()  # docker_env: its image is used as it is
    reason = engineless_reason(install, options)
    if reason:
        raise StepError(
            f"platforms {options.platforms}: an image index is built by the engine-less "
            f"builder only (an engine would need emulation), and it cannot build this "
            f"codeset: {reason}. Leave platforms empty to build the base's own platform with "
            "an engine; nothing was pushed"
        )
    return platforms


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
    attach_sbom(the_plan, options, digest, log)
    return BuildResult(the_plan.pull_reference, digest, built=True)


def lock_licences(the_plan: Plan, options: BuildOptions) -> dict[str, list[dict]] | None:
    """The licences of the plan's lock (`core_metadata.licences`, read from the index), or None
    when its image has no bill of materials (no lock, or no base pinned). Read only once the
    registry lacks the tag, so a cache hit reads no index. Raises StepError."""
    if the_plan.recipe is None or SBOM_FILE not in the_plan.recipe.files:
        return None
    assert the_plan.install.lock is not None
    dists = read_pylock(the_plan.install.lock.decode(), "the lock")
    return licences(dists, options.index())


def with_licences(the_plan: Plan, options: BuildOptions) -> Plan:
    """The plan whose recipe's bill of materials lists the lock's licences (`plan` leaves them
    out: it reads no index for them). The per-package builds make the same document."""
    found = lock_licences(the_plan, options)
    if found is None or the_plan.recipe is None or the_plan.base is None:
        return the_plan
    assert the_plan.install.lock is not None
    files = dict(the_plan.recipe.files)
    files[SBOM_FILE] = environment_sbom(the_plan.install.lock, the_plan.base, found)
    return replace(the_plan, recipe=replace(the_plan.recipe, files=files))


def attach_sbom(the_plan: Plan, options: BuildOptions, digest: str, log: Log) -> None:
    """Attach the image's bill of materials (the one the recipe put in the image) to the
    pushed manifest as an OCI 1.1 referrer (`referrers.attach`); nothing for an image without
    a lock, nor when the build attached its own (per-package, engine-less, platforms: their
    licences come from the layer cache's records and the index, `core_metadata`)."""
    if the_plan.recipe is None or SBOM_FILE not in the_plan.recipe.files:
        return

    def document() -> bytes:  # the lock's licences read only when nothing is attached yet
        return with_licences(the_plan, options).recipe.files[SBOM_FILE]  # type: ignore[union-attr]

    attach_sbom_data(document, the_plan.push_reference, options, digest, log)


def attach_sbom_data(
    data: bytes | Callable[[], bytes],
    push_reference: str,
    options: BuildOptions,
    digest: str,
    log: Log,
) -> None:
    """`attach_sbom` of the CycloneDX document `data` (or what makes it, called only when the
    image has no SBOM referrer yet), for the image `push_reference`."""
    writer = RegistryWriter(RegistryClient(options.registry, insecure=options.insecure))
    if referrers.referrers(writer, options.repository, digest, sbom.MEDIA_TYPE):
        return  # the per-package and engine-less builds attach their own
    if callable(data):
        data = data()
    found = writer.get_manifest(options.repository, digest)
    if found is None:
        raise StepError(f"{push_reference}: {digest} vanished before its SBOM was attached")
    subject = referrers.Subject(digest, found[1], len(found[0]))
    attached = referrers.attach(
        writer, options.repository, subject, sbom.MEDIA_TYPE, data, "sbom.cdx.json"
    )
    log(f"SBOM (CycloneDX {sbom.SPEC_VERSION}) attached to {digest} as referrer {attached}")


def image_sbom(path: Path | str, options: BuildOptions) -> bytes:
    """The CycloneDX document of the codeset's image: the referrer attached to the image its tag
    names when the registry has it, else the document a build would put in it. Raises
    StepError when the environment has no lock to make one from."""
    the_plan = plan(path, options, base_resolver(options, retries=0))
    if the_plan.tag:
        writer = RegistryWriter(RegistryClient(options.registry, insecure=options.insecure))
        digest = writer.client.manifest_digest(options.repository, the_plan.tag)
        if digest is not None:
            found = referrers.referrers(writer, options.repository, digest, sbom.MEDIA_TYPE)
            if found:
                return referrers.find(writer, options.repository, digest, sbom.MEDIA_TYPE)
    the_plan = with_licences(the_plan, options)
    data = the_plan.recipe.files.get(SBOM_FILE) if the_plan.recipe else None
    if data is None:
        raise StepError(
            "inspect --sbom: the environment has no lock to make a bill of materials from, and "
            "no SBOM is attached to its image; give it a lock (pylock.toml, uv.lock, hashed "
            "requirements) or `resolve`, or build it per-package first"
        )
    return data


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
        from .backends.layered.assemble import Fallback
        from .backends.layered.engineless import build_engineless

        try:
            return build_engineless(
                the_plan.install, options, the_plan.tag, log, base_digest(the_plan)
            )
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


def base_digest(the_plan: Plan) -> str:
    """The base's digest the plan's tag hashes (`sha256:...`), or "" when none was resolved."""
    digest = the_plan.base.digest if the_plan.base else ""
    return digest if digest.startswith("sha256:") else ""


def build_image_index(the_plan: Plan, options: BuildOptions, log: Log) -> str:
    """The `platforms` build (engine-less, `layered.platforms`): the index digest. A
    `Fallback` is a StepError here: no engine builds another CPU's image."""
    # Imported here: a cache hit never assembles layers, and it is CLI start-up time.
    from .backends.layered.assemble import Fallback
    from .backends.layered.platforms import build_index

    try:
        return build_index(the_plan.install, options, the_plan.tag, the_plan.platforms, log,
                           base_digest(the_plan))  # fmt: skip
    except Fallback as why:
        raise StepError(
            f"platforms {','.join(map(str, the_plan.platforms))}: the engine-less builder "
            f"cannot build this codeset: {why}. No engine stands in (it would need "
            "emulation); nothing was pushed"
        ) from None


def run_build(the_plan: Plan, options: BuildOptions, log: Log) -> str:
    """Build and push; the index settings (credentials included) reach the install step as a
    build secret only (`indexes.secret_files`), never as a build argument."""
    assert the_plan.recipe is not None
    if the_plan.platforms:
        return build_image_index(the_plan, options, log)
    if options.engine in (engines.NO_ENGINE, "auto"):
        built = build_without_engine(the_plan, options, log)
        if built is not None:
            return built
    engine = engines.pick_engine(options.engine)
    if options.layering == "per-package":
        reason = single_layer_reason(the_plan.install, options)
        if not reason:
            # Imported here: a cache hit never assembles layers, and it is CLI start-up time.
            from .backends.layered.assemble import Fallback, build_layered

            try:
                return build_layered(
                    the_plan.install, options, the_plan.tag, log, base_digest(the_plan)
                )
            except Fallback as why:
                reason = str(why)
        log(f"layering: single, not per-package: {reason}")
    # The recipe's bill of materials, with the lock's licences, goes into the image: read only
    # now, when the recipe is built (the layered builds write their own).
    the_plan = with_licences(the_plan, options)
    assert the_plan.recipe is not None
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
    """Run one engine command; returns its stdout when it prints the digest. Its log goes to
    stderr, never stdout (`processes.run_logged`), through a mask when index credentials are
    in play (an installer that echoes a URL it cannot parse must not print the token in it);
    a failure's error ends with the engine's last lines."""
    env = {**os.environ, **job.build_args}
    try:
        done = run_logged(
            command.argv, env=env, capture_stdout=command.prints_digest, masked=job.masked
        )
    except FileNotFoundError:
        raise StepError(
            f"build engine `{engine}`: `{command.argv[0]}` is not installed here; install it "
            "or choose another engine (kaniko, buildah, podman, docker)"
        ) from None
    if done.returncode != 0:
        raise StepError(
            failure(
                f"build engine `{engine}`",
                done,
                "No image was pushed and no output was written.",
                running=command.redacted(job.masked),
            )
        )
    return done.stdout

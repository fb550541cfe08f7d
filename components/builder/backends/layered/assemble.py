"""Build an environment image one layer per distribution, writing and pushing it ourselves.

1. Read the base's manifest and config from its registry (no pull), and the layer cache's
   record of this base (`cache.lookup_base`: its Python and venv skeleton, kept by an earlier
   build).
2. Resolve the requirements to a PEP 751 lock for the base's Python: the recorded one, else a
   guess (`guess_python`) checked against the probe of the base, which is pulled meanwhile;
   a wrong guess is resolved again.
3. Name each distribution's layer (`units`) and ask the layer cache which exist; mount those
   into the target repository. They are neither downloaded, installed, compiled nor uploaded.
4. Install only the missing distributions:
   - when the base is known and every missing one is a pure-Python wheel, the builder installs
     them itself (`host_install`), and the base is never pulled;
   - else, in a working container of the base, one `buildah run` makes the venv (uv),
     installs them (uv, `--no-deps --require-hashes`, the exact wheels of the lock), compiles
     their bytecode and checks their libraries (the recipe's own scripts).
5. Cut the layers: the venv's skeleton, the runtime module (with the .pth that makes it
   importable), one per missing distribution (or group) from its RECORD, the lock last. Each
   is pushed as soon as it is written: uploaded if the registry lacks it, recorded in the
   cache; then the config and manifest.

`Fallback` is raised, before anything is pushed, when the environment cannot be layered
(a distribution without a wheel, an interpreter uv cannot serve, a base with too many layers):
the caller builds it as one layer and logs the reason.
"""

from __future__ import annotations

import json
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cache as cache_function
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from mlflow_steps import __version__

from ....problems import StepError
from ...oci import referrers, sbom
from ...oci.registry import RegistryClient
from ...oci.registry_push import RegistryWriter, sha256_digest
from ...oci.sbom import SBOM_IN_IMAGE
from ...planning import core_metadata
from ...planning.core_metadata import licences, read_ahead
from ...planning.hash_pins import MISSING_HEAD, check_pins, hash_mode_sets, pinned_hashes, unhashed
from ...planning.indexes import IndexSettings
from ...planning.options import BuildOptions
from ...planning.plan import (
    LOCK_IN_IMAGE,
    MLFLOW_CONSTRAINTS,
    REQUIRE_HASHES,
    RUNTIME,
    STAGING,
    InstallPlan,
    find_uv,
)
from ...planning.resolution import PLATFORM, read_pylock, resolve, staged_files
from ...reading.uv_options import uv_install
from ..engines import source_date_epoch
from ..recipe import RUNTIME_DIR, VENV
from . import cache, host_install, installed
from .image import (
    ARCHITECTURES,
    OCI_CONFIG,
    OCI_MANIFEST,
    Descriptor,
    Reference,
    fetch_base,
    image_config,
    image_manifest,
)
from .tarlayer import MEDIA_TYPE, Entry, LayerBlob, LayerWriters, write_layer
from .units import GROUPS, Context, Unit, plan_units, room_for
from .wheels import Pin, Target, pins_for, without_wheel
from .workspace import Workspace, index_environment

Log = Callable[[str], None]
PUSHERS = 4  # requests to the registry at a time
LOOKUPS = 8  # layer-cache look-ups (each then a mount) at a time
SCRIPTS = ("compile-bytecode.py", "check-libraries.py")
FILE_OPTIONS = ("-c", "-r", "--constraint", "--requirement", "-e", "--editable")


class Fallback(Exception):
    """This environment is built as one layer; the message says why."""


@dataclass
class Layer:
    what: str  # for the history and the log
    descriptor: Descriptor
    diff_id: str
    blob: LayerBlob | None = None  # None: already in the registry
    unit: Unit | None = None


class Clock:
    """Seconds per phase, for the log (and the benchmarks that read it)."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.spent: list[str] = []

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self.spent.append(f"{phase} {now - self.last:.1f} s")
        self.last = now


@dataclass
class Prepared:
    """The environment resolved for one target, its layers named and looked up."""

    target: Target
    lock: str
    pins: list[Pin]
    units: list[Unit]
    reused: dict[str, Layer]
    missing: list[Unit]  # in image order

    @property
    def in_base(self) -> list[Unit]:
        """The missing units the builder cannot install itself."""
        return [unit for unit in self.missing if unit.builder_identity is None]


def registries(install: InstallPlan, options: BuildOptions,
               base_digest: str) -> tuple[RegistryWriter, RegistryWriter, Reference]:  # fmt: skip
    """(the writer of the registry pushed to, the base's registry's writer (the same one when
    the base is there), the base's reference at `base_digest` (the digest the tag hashes;
    empty: its tag)): how the per-package, engine-less and platform builds reach both."""
    writer = RegistryWriter(RegistryClient(options.registry, insecure=options.insecure))
    base_ref = Reference.parse(install.base_image).at(base_digest)
    base_writer = writer
    if base_ref.host != options.registry:
        base_writer = RegistryWriter(RegistryClient(base_ref.host, insecure=options.insecure))
    return writer, base_writer, base_ref


def build_layered(install: InstallPlan, options: BuildOptions, tag: str, log: Log,
                  base_digest: str = "") -> str:  # fmt: skip
    """Build `install` and push it as `<registry>/<repository>:<tag>`; returns the manifest
    digest. `base_digest`: the base's digest the tag hashes (read at that digest; empty: by
    its tag). Raises Fallback (nothing pushed) or StepError."""
    clock = Clock()
    repository = options.repository
    writer, base_writer, base_ref = registries(install, options, base_digest)
    layers_repo = cache.cache_repository(repository)
    scripts = {name: install.files[f"{STAGING}/{name}"] for name in SCRIPTS}
    index = options.index()
    base = fetch_base(base_writer, base_ref, platform.machine())
    room = room_for(len(base.layers))
    if room < GROUPS + 1:
        raise Fallback(f"the base has {len(base.layers)} layers: no room below the limit")
    base_key = cache.base_identity(base.digest, VENV, install.compile_bytecode, uv_version())
    known = cache.lookup_base(writer, layers_repo, base_key)
    options_lines, constraint_lines, names = requirement_lines(install)
    user_hashes = pinned_hashes(install)
    with ExitStack() as stack, ThreadPoolExecutor(1) as puller:
        # (The pool is shut down, waiting for a pull in flight, before the stack removes the
        # container.)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlflow-steps-layers-")))
        writers = stack.enter_context(LayerWriters())  # they start while the base is pulled

        def open_space(probe: bool) -> tuple[Workspace, Target | None]:
            settings = index_environment(index.install_env())
            space = stack.enter_context(
                Workspace(install.base_image, options.insecure, settings, scripts)
            )
            if not probe:
                assert known is not None
                space.python = known.python["executable"]
                return space, None
            return space, space.probe()

        def prepare(target: Target) -> Prepared:
            """Resolve for `target` and look the layers up (while the base is pulled, when
            it is)."""
            lock = locked(install, options_lines + constraint_lines + names, target, options)
            locked_dists = read_pylock(lock, "the lock")
            pins = pins_for(locked_dists, target, requirement_names(names))
            check_pins(pins, user_hashes)  # before any layer is mounted or pushed
            check_hash_closure(install, target, options)
            refuse_sdists(pins, target)
            minor = target.python_minor
            pure = frozenset(
                pin.name
                for pin in pins
                if host_install.can_install(pin, minor, install.compile_bytecode)
            )
            context = Context(target, VENV, install.compile_bytecode, pure=pure)
            units = plan_units(pins, context, room)
            reused = reuse(writer, repository, layers_repo, units)
            # The bill of materials' licences, meanwhile: those the reused layers' records
            # do not carry.
            read_ahead(locked_dists, index)
            missing = [unit for unit in units if unit.identity not in reused]
            return Prepared(target, lock, pins, units, reused, missing)

        pull = None
        if known is None:  # the base's Python is probed while the environment is resolved
            pull = puller.submit(open_space, True)
            guess = Target(guess_python(base.config), platform.machine(), GUESSED_GLIBC)
        else:
            guess = Target(known.python["python"], known.python["machine"],
                           known.python["glibc"])  # fmt: skip
        check_target(guess)
        ready = prepare(guess)
        clock.mark("resolve and look up")
        skeleton = None
        if known is not None and writer.mount(repository, known.skeleton.digest, layers_repo):
            skeleton = Layer("venv", known.skeleton, known.diff_id)
        if pull is None and (ready.in_base or skeleton is None):
            pull = puller.submit(open_space, known is None)
        space = None
        if pull is not None:
            space, probed = pull.result()
            clock.mark("base pulled")
            if probed is not None and probed != guess:
                check_target(probed)
                again = pins_for(read_pylock(ready.lock, "the lock"), probed,
                                 requirement_names(names))  # fmt: skip
                if probed.python_minor != guess.python_minor or again != ready.pins:
                    log(f"per-package layers: the base's Python is {probed.python} "
                        f"({probed.machine}, glibc {probed.glibc}), not {guess.python}: "
                        "resolved again")  # fmt: skip
                    ready = prepare(probed)
                else:
                    ready.target = probed
        target = ready.target
        site = site_of(target)
        # Once the base is pulled, uv installs every missing distribution there (faster than
        # the builder's own installer); else the builder installs them itself (all pure).
        log(
            f"per-package layers: {len(ready.units)} for {len(ready.pins)} distributions; "
            f"{len(ready.reused)} already in the registry (mounted), {len(ready.missing)} to "
            "install"
            + (": " + ", ".join(unit.label for unit in ready.missing) if ready.missing else "")
            + ("" if space else "; by the builder itself, the base not pulled")
        )
        if space is not None:
            pinned = [pin.requirement for unit in ready.missing for pin in unit.pins]
            space.install(VENV, site, [*options_lines, *pinned] if pinned else [],
                          install.compile_bytecode)  # fmt: skip
            space.remove_staging()
            root = space.root
            recorded = ready.missing
        else:
            root = tmp / "staged"
            compiler = scripts["compile-bytecode.py"] if install.compile_bytecode else None
            mine = [pin for unit in ready.missing for pin in unit.pins]
            refused = host_install.install_pure(
                mine, root, VENV, site, target.python_minor, index, compiler
            )
            if refused:
                raise Fallback(
                    "a `none-any` wheel carries a shared library: "
                    + ", ".join(f"{pin.name} {pin.version}" for pin in refused)
                )
            recorded = [unit.by_builder() for unit in ready.missing]
        claimed, skeleton_paths = installed.split(root, VENV, site, cache_tag(target))
        clock.mark("installed")
        # The skeleton is written only when the base record did not give it.
        bom = bill_of_materials(install, ready.lock, base, index)
        jobs = layer_jobs(root, skeleton_paths if skeleton is None else None, claimed, recorded,
                          install, site, ready.lock, bom)  # fmt: skip

        made, uploaded = write_and_push(writer, repository, layers_repo, jobs, tmp,
                                        target.machine, writers.executor())  # fmt: skip
        clock.mark("layers written and pushed")
        own = [layer for layer in made if not layer.unit]
        by_unit = dict(zip([u.identity for u in ready.missing], [lay for lay in made if lay.unit]))
        if skeleton is None:
            skeleton = own.pop(0)
        if space is not None and known is None:
            remember_base(writer, repository, layers_repo, base_key, space, target, skeleton)
        ordered = [skeleton, own[0]]
        ordered += [by_unit.get(u.identity) or ready.reused[u.identity] for u in ready.units]
        ordered.append(own[1])
    digest = publish(writer, base_writer, base_ref, install, repository, tag, base, ordered,
                     bom, log)  # fmt: skip
    clock.mark("push")
    size = sum(layer.descriptor.size for layer in uploaded)
    log(
        f"per-package layers: uploaded {len(uploaded)} ({size} bytes), mounted "
        f"{len(ordered) - len(uploaded)}; {len(base.layers) + len(ordered)} layers in all; "
        + ", ".join(clock.spent)
    )
    return digest


# Before the base is probed, its glibc is taken to be Debian 12's (the resolution's platform).
GUESSED_GLIBC = PLATFORM.rpartition("manylinux_")[2].replace("_", ".")


def guess_python(config: dict) -> str:
    """The base's Python before it is probed: its config's PYTHON_VERSION (the python:3.x
    images set it), else the builder's own. The probe has the last word."""
    for item in config.get("config", {}).get("Env") or []:
        name, _, value = item.partition("=")
        if name == "PYTHON_VERSION" and value.count(".") >= 1:
            return value
    return platform.python_version()


def check_target(target: Target) -> None:
    if target.python_minor < (3, 8):
        raise Fallback(f"the base's Python {target.python} is older than uv supports (3.8)")
    if not target.glibc:
        raise Fallback("the base is not glibc-based (manylinux wheels only)")


def site_of(target: Target) -> str:
    return "{}/lib/python{}.{}/site-packages".format(VENV, *target.python_minor)


def cache_tag(target: Target) -> str:
    return "cpython-{}{}".format(*target.python_minor)


def remember_base(writer: RegistryWriter, repository: str, layers_repo: str, key: str,
                  space: Workspace, target: Target, skeleton: Layer) -> None:  # fmt: skip
    """Record the base's Python and the skeleton layer under `key` in the layer cache."""
    digest = skeleton.descriptor.digest
    blob = skeleton.blob.path if skeleton.blob is not None else None
    if cache.keep(writer, layers_repo, digest, repository, blob):
        python = {"python": target.python, "machine": target.machine, "glibc": target.glibc,
                  "executable": space.python}  # fmt: skip
        cache.record(
            writer, layers_repo, key, skeleton.descriptor, skeleton.diff_id, "venv skeleton",
            ARCHITECTURES.get(target.machine, target.machine),
            {cache.BASE_PYTHON: json.dumps(python, sort_keys=True)},
        )  # fmt: skip


@cache_function
def uv_version() -> str:
    """`uv --version` of the uv the workspace runs (the venv skeleton's pyvenv.cfg names it)."""
    uv = find_uv()
    if not uv:
        raise StepError("per-package layering needs uv, and it is not installed here")
    return subprocess.run([uv, "--version"], capture_output=True, text=True).stdout.strip()


def requirement_lines(install: InstallPlan) -> tuple[list[str], list[str], list[str]]:
    """(option lines, constraint lines, requirement lines) of every requirement set, in order.
    Constraint files (`-c`, shipped with the plan) take part in the resolution only: the
    install is of the lock's exact pins. Other files the sets read (path requirements,
    includes, editables) cannot be layered: Fallback. The MLflow addition's constraints of a
    lock are the lock's own pins, resolved together here."""
    options, constraints, requirements = [], [], []
    shipped = staged_files(install.files)
    for requirement_set in install.requirement_sets:
        for line in requirement_set.lines:
            if line == REQUIRE_HASHES or line == f"-c {MLFLOW_CONSTRAINTS}":
                continue
            option, _, value = line.partition(" ")
            if option in ("-c", "--constraint") and value.strip() in shipped:
                constraints.append(line)
                continue
            if option in FILE_OPTIONS:
                raise Fallback(f"{requirement_set.name} reads another file (`{line}`)")
            if line.startswith("-"):
                options.append(line)
                continue
            try:
                parsed = Requirement(line.split(" --hash=")[0])
            except InvalidRequirement:
                raise Fallback(f"`{line}` is not a requirement from the index") from None
            if parsed.url:
                raise Fallback(f"{parsed.name} comes from {parsed.url}, not from the index")
            requirements.append(line)
    if uv_install(options).own_index:
        # The per-package install reads the builder's index settings; pip and uv read the
        # file's own (uv_options.py): the single-layer install does.
        raise Fallback("the requirements name their own index (--index-url or --no-index)")
    return options, constraints, requirements


def requirement_names(lines: list[str]) -> set[str]:
    return {Requirement(line.split(" --hash=")[0]).name for line in lines}


def locked(install: InstallPlan, lines: list[str], target: Target, options: BuildOptions) -> str:
    """The plan's lock (`resolve`, or the codeset's own), else the `resolve` machinery run for
    the base's Python: PEP 751 text, URLs without user information."""
    if install.lock is not None:
        return install.lock.decode()
    env, beside = options.index().install_env(), staged_files(install.files)
    try:
        return resolve(lines, target.python_version, env, beside).pylock
    except StepError as error:
        raise Fallback(f"the environment could not be resolved beforehand ({error})") from None


def check_hash_closure(
    install: InstallPlan, target: Target, options: BuildOptions, platform: str = PLATFORM
) -> None:
    """pip's hash-checking mode reaches what a hashed set pulls in (`hash_pins`): each set in
    that mode is resolved alone (uv, no build, metadata only) and every distribution of it
    without a pinned hash is named, as pip's HashMissing would name it when it downloads.
    A lock is its own closure and is not resolved again. Raises StepError (nothing pushed), or
    Fallback when the set cannot be resolved here."""
    if install.lock is not None:
        return
    sets = hash_mode_sets(install)
    if not sets:
        return
    pinned = pinned_hashes(install)
    env, beside = options.index().install_env(), staged_files(install.files)
    problems = []
    for requirement_set in sets:
        try:
            found = resolve(list(requirement_set.lines), target.python_version, env, beside,
                            platform).distributions  # fmt: skip
        except StepError as error:
            raise Fallback(f"the hashed requirements could not be resolved ({error})") from None
        missing = unhashed(found, pinned)
        if missing:
            problems.append(
                f"{requirement_set.name}: {MISSING_HEAD} These are pulled in by its hashed "
                f"requirements and have none: {', '.join(missing)}; add each with its --hash "
                "(`uv pip compile --generate-hashes` writes them all). Nothing was pushed."
            )
    if problems:
        raise StepError(problems)


def refuse_sdists(pins: list[Pin], target: Target) -> None:
    lacking = without_wheel(pins)
    if lacking:
        names = ", ".join(f"{pin.name} {pin.version}" for pin in lacking)
        raise Fallback(
            f"no wheel for this base (Python {target.python}, {target.machine}, glibc "
            f"{target.glibc}) of {names}: an sdist build can touch anything"
        )


def wheels_of(unit: Unit) -> list[tuple[str, str]]:
    """(sha256, lock URL) of the unit's wheels: what its record's licences are bound to."""
    return [(pin.wheel_sha256, pin.wheel_url) for pin in unit.pins
            if pin.wheel_sha256 and pin.wheel_url]  # fmt: skip


def reuse(writer: RegistryWriter, repository: str, layers_repo: str, units: list[Unit]):
    """{identity: Layer} of the units the cache holds (installed in the base, else by the
    builder), each mounted into `repository`. One task per unit, `LOOKUPS` at a time: its
    record read (each identity once: a unit the builder installs has the same identity both
    ways), then its blob mounted at once, no waiting for the other units' records. The
    licences a mounted layer's record carries are taken (`core_metadata.remember`): the bill
    of materials reads from the index only those of the layers built here."""

    def one(unit: Unit) -> Layer | None:
        for key in dict.fromkeys(k for k in (unit.identity, unit.builder_identity) if k):
            found = cache.lookup_one(writer, layers_repo, key)
            if found is not None and writer.mount(repository, found.descriptor.digest,
                                                  layers_repo):  # fmt: skip
                if found.licences:
                    core_metadata.remember(found.licences, wheels_of(unit))
                return Layer(unit.label, found.descriptor, found.diff_id, unit=unit)
        return None

    with ThreadPoolExecutor(LOOKUPS) as pool:
        layers = list(pool.map(one, units))
    return {unit.identity: layer for unit, layer in zip(units, layers) if layer is not None}


Job = tuple[str, "Unit | None", list[Entry]]


def layer_jobs(root: Path, skeleton: list[str] | None, claimed: dict[str, list[str]],
               missing: list[Unit], install: InstallPlan, site: str,
               lock: str, bom: bytes | None = None) -> list[Job]:  # fmt: skip
    """(what, unit, entries) of each layer to write, from the tree at `root`: the skeleton
    (unless None), runtime, missing units (`claimed`: each distribution's image paths),
    lock (with `bom`, the bill of materials, beside it)."""
    files = lambda paths: [Entry(path, root / path.lstrip("/")) for path in paths]  # noqa: E731
    runtime = [
        Entry(f"{RUNTIME_DIR}/{name.split('/', 1)[1]}", data=data)
        for name, data in sorted(install.files.items())
        if name.startswith(f"{RUNTIME}/")
    ]
    runtime.append(Entry(f"{site}/mlflow_steps_runtime.pth", data=b"/opt/mlflow-steps\n"))
    jobs: list[Job] = []
    if skeleton is not None:
        jobs.append(("venv", None, files(skeleton)))
    jobs.append(("runtime module", None, runtime))
    for unit in missing:
        paths = [path for pin in unit.pins for path in claimed.get(pin.name, [])]
        jobs.append((unit.label, unit, files(paths)))
    last = [Entry(LOCK_IN_IMAGE, data=lock.encode())]
    if bom is not None:
        last.append(Entry(SBOM_IN_IMAGE, data=bom))
    jobs.append(("lock", None, last))
    return jobs


def bill_of_materials(install: InstallPlan, lock: str, base, index: IndexSettings) -> bytes:
    """The image's CycloneDX document (`sbom.cyclonedx`): the lock's distributions on the
    base, by its digest, with the licences their wheels' metadata on the index give
    (`core_metadata.licences`: for the lock's wheels, by sha256, never from the layers' files;
    a reused layer's record carries what its wheels gave the build that wrote it).
    The same bytes the single-layer recipe writes for the same lock and base. Raises
    StepError when the index cannot be read."""
    dists = read_pylock(lock, "the lock")
    return sbom.cyclonedx(dists, VENV, install.base_image, base.digest, licences(dists, index))


def attach_bill_of_materials(writer: RegistryWriter, repository: str, digest: str, bom: bytes,
                             log: Log, pushed: bytes | None = None) -> None:  # fmt: skip
    """Attach `bom` to the pushed manifest `digest` as an OCI 1.1 referrer. `pushed`: that
    manifest's bytes, put by this build as an OCI image manifest (else read back)."""
    if pushed is not None and sha256_digest(pushed) == digest:
        subject = referrers.Subject(digest, OCI_MANIFEST, len(pushed))
    else:
        found = writer.get_manifest(repository, digest)
        if found is None:
            raise StepError(f"{repository}@{digest} vanished before its SBOM was attached")
        subject = referrers.Subject(digest, found[1], len(found[0]))
    attached = referrers.attach(writer, repository, subject, sbom.MEDIA_TYPE, bom,
                                "sbom.cdx.json")  # fmt: skip
    log(f"SBOM (CycloneDX {sbom.SPEC_VERSION}) attached to {digest} as referrer {attached}")


def write_and_push(writer: RegistryWriter, repository: str, layers_repo: str, jobs: list[Job],
                   folder: Path, machine: str, writers: Executor,
                   consume: bool = False) -> tuple[list[Layer], list[Layer]]:  # fmt: skip
    """Write every layer by `writers` (`tarlayer.LayerWriters`; each compresses on every
    core), and put each into the repository as soon as it is written, `PUSHERS` at a time:
    nothing when the repository holds it, a mount when the cache repository does (the
    builder's own small layers are the same in every image), else an upload, then mounted into
    the cache; new distribution layers are recorded in the cache. With `consume`, the
    entries' source files are removed as each layer is written, and each layer's file once
    it is pushed (their `blob.path` is then gone). Returns (the layers, in `jobs` order; the
    uploaded ones)."""

    def one(job: Job, written) -> tuple[Layer, bool]:
        what, unit, _ = job
        blob = written.result()
        layer = Layer(what, Descriptor(MEDIA_TYPE, blob.digest, blob.size), blob.diff_id,
                      blob, unit)  # fmt: skip
        digest = blob.digest
        sent = False
        # A distribution layer built here was not in the cache: no mount is tried for it.
        if not writer.has_blob(repository, digest) and (
            unit is not None or not writer.mount(repository, digest, layers_repo)
        ):
            writer.upload(repository, digest, blob.path)
            sent = True
        # The cache gets the blob before its record (the target may have held it while the
        # cache lost it); the builder's own layers are mounted there for the next build.
        if unit is None:
            if sent:
                cache.keep(writer, layers_repo, digest, repository, None)
        elif cache.keep(writer, layers_repo, digest, repository, blob.path):
            told = core_metadata.known(wheels_of(unit))
            licences = json.dumps(told, sort_keys=True) if told else ""
            cache.record(
                writer, layers_repo, unit.identity, layer.descriptor, layer.diff_id, what,
                ARCHITECTURES.get(machine, machine),
                {cache.LICENCES: licences} if 0 < len(licences) <= cache.LICENCES_LIMIT else None,
            )  # fmt: skip
        if consume:
            blob.path.unlink(missing_ok=True)
        return layer, sent

    with ThreadPoolExecutor(PUSHERS) as pushers:
        epoch = source_date_epoch()
        written = [
            writers.submit(write_layer, entries, folder / f"layer-{n}.tar.gz", epoch, consume)
            for n, (_, _, entries) in enumerate(jobs)
        ]
        done = list(pushers.map(one, jobs, written))
    return [layer for layer, _ in done], [layer for layer, sent in done if sent]


def copy_base_layer(writer, base_writer, base_ref: Reference, repository: str, layer) -> None:
    """Mount the base's layer (same registry), or copy it over (another registry)."""
    if base_writer is writer and writer.mount(repository, layer.digest, base_ref.repository):
        return
    if not writer.has_blob(repository, layer.digest):
        writer.upload(repository, layer.digest, base_writer.get_blob(base_ref.repository,
                                                                     layer.digest))  # fmt: skip


def publish(writer: RegistryWriter, base_writer: RegistryWriter, base_ref: Reference,
            install: InstallPlan, repository: str, tag: str, base, layers: list[Layer],
            bom: bytes, log: Log) -> str:  # fmt: skip
    """The image of `layers` on `base` pushed as `repository:tag`: the base's layers copied
    (mounted) into `repository`, the config and manifest put, the SBOM `bom` attached as a
    referrer; the manifest's digest. The per-package and engine-less builds end here."""
    with ThreadPoolExecutor(PUSHERS) as pool:
        copy = lambda layer: copy_base_layer(writer, base_writer, base_ref, repository, layer)  # noqa: E731
        list(pool.map(copy, base.layers))
    manifest = image_manifest_on(writer, install, repository, base, layers)
    digest = writer.put_manifest(repository, tag, manifest, OCI_MANIFEST)
    attach_bill_of_materials(writer, repository, digest, bom, log, manifest)
    return digest


def image_manifest_on(writer: RegistryWriter, install: InstallPlan, repository: str, base,
                      layers: list[Layer]) -> bytes:  # fmt: skip
    """The manifest of `layers` on `base` (`image.image_config`: the builder's labels, the
    venv's PATH), its config blob pushed to `repository`; the manifest's bytes, not put."""
    base_labels = {
        "org.opencontainers.image.base.name": install.base_image,
        "org.opencontainers.image.base.digest": base.digest,
    }
    labels = {
        "io.github.mlflow-steps.version": __version__,
        "io.github.mlflow-steps.environment-kind": install.kind,
        "io.github.mlflow-steps.layering": "per-package",
        **base_labels,
    }
    config = image_config(
        base.config,
        [layer.diff_id for layer in layers],
        [layer.what for layer in layers],
        {"PATH": f"{VENV}/bin:$PATH", "VIRTUAL_ENV": VENV},
        labels,
        source_date_epoch(),
    )
    config_digest = sha256_digest(config)
    writer.ensure_blob(repository, config_digest, config)
    return image_manifest(
        Descriptor(OCI_CONFIG, config_digest, len(config)),
        [*base.layers, *(layer.descriptor for layer in layers)],
        base_labels,
    )

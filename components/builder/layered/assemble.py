"""Build an environment image one layer per distribution, writing and pushing it ourselves.

1. In a working container of the base: probe its Python, create the venv (uv), resolve the
   requirements to a PEP 751 lock for that interpreter.
2. Name each distribution's layer (`units`) and ask the layer cache which exist; mount those
   into the target repository. They are neither downloaded, installed, compiled nor uploaded.
3. Install only the missing distributions (uv, `--no-deps --require-hashes`, the exact wheels
   of the lock), compile their bytecode and check their libraries (the recipe's own scripts).
4. Cut the layers: the venv's skeleton, the runtime module (with the .pth that makes it
   importable), one per missing distribution (or group) from its RECORD, the lock last.
5. Upload what the registry lacks, record new layers in the cache, write config and manifest.

`Fallback` is raised, before anything is pushed, when the environment cannot be layered
(a distribution without a wheel, an interpreter uv cannot serve, a base with too many layers):
the caller builds it as one layer and logs the reason.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from mlflow_steps import __version__

from ...problems import StepError
from ..engines import source_date_epoch
from ..options import BuildOptions
from ..plan import LOCK_IN_IMAGE, MLFLOW_CONSTRAINTS, REQUIRE_HASHES, RUNTIME, STAGING, InstallPlan
from ..recipe import RUNTIME_DIR, VENV
from ..registry import RegistryClient
from ..registry_push import RegistryWriter, sha256_digest
from ..resolution import read_pylock, resolve
from . import cache, installed
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
from .tarlayer import MEDIA_TYPE, Entry, LayerBlob, write_layer
from .units import GROUPS, Context, Unit, plan_units, room_for
from .wheels import Pin, Target, pins_for, without_wheel
from .workspace import Workspace, index_environment

Log = Callable[[str], None]
PUSHERS = 4  # requests to the registry at a time
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


def build_layered(install: InstallPlan, options: BuildOptions, tag: str, log: Log) -> str:
    """Build `install` and push it as `<registry>/<repository>:<tag>`; returns the manifest
    digest. Raises Fallback (nothing pushed) or StepError."""
    clock = Clock()
    repository = options.repository
    writer = RegistryWriter(RegistryClient(options.registry, insecure=options.insecure))
    base_ref = Reference.parse(install.base_image)
    base_writer = writer
    if base_ref.host != options.registry:
        base_writer = RegistryWriter(RegistryClient(base_ref.host, insecure=options.insecure))
    layers_repo = cache.cache_repository(repository)
    scripts = {name: install.files[f"{STAGING}/{name}"] for name in SCRIPTS}
    index = index_environment(options.index().install_env())
    with Workspace(install.base_image, options.insecure, index, scripts) as space:
        clock.mark("base")
        target = space.probe()
        if target.python_minor < (3, 8):
            raise Fallback(f"the base's Python {target.python} is older than uv supports (3.8)")
        if not target.glibc:
            raise Fallback("the base is not glibc-based (manylinux wheels only)")
        base = fetch_base(base_writer, base_ref, target.machine)
        room = room_for(len(base.layers))
        if room < GROUPS + 1:
            raise Fallback(f"the base has {len(base.layers)} layers: no room below the limit")
        options_lines, names = requirement_lines(install)
        lock = locked(install, options_lines + names, target, options)
        pins = pins_for(read_pylock(lock, "the lock"), target, requirement_names(names))
        refuse_sdists(pins, target)
        units = plan_units(pins, Context(target, VENV, install.compile_bytecode), room)
        space.create_venv(VENV)
        clock.mark("resolve")
        reused = reuse(writer, repository, layers_repo, units)
        missing = [unit for unit in units if unit.identity not in reused]
        log(
            f"per-package layers: {len(units)} for {len(pins)} distributions; {len(reused)} "
            f"already in the registry (mounted), {len(missing)} to install: "
            + (", ".join(unit.label for unit in missing) or "none")
        )
        clock.mark("mount")
        if missing:
            pinned = [pin.requirement for unit in missing for pin in unit.pins]
            space.install(VENV, [*options_lines, *pinned])
        clock.mark("install")
        major, minor = target.python_minor
        site = f"{VENV}/lib/python{major}.{minor}/site-packages"
        space.compile_and_check(VENV, site, install.compile_bytecode)
        space.remove_staging()
        clock.mark("bytecode and library check")
        claimed, skeleton = installed.split(space.root, VENV, site, f"cpython-{major}{minor}")
        with tempfile.TemporaryDirectory(prefix="mlflow-steps-layers-") as tmp:
            jobs = layer_jobs(space.root, skeleton, claimed, missing, install, site, lock)
            made = [
                Layer(
                    what, Descriptor(MEDIA_TYPE, blob.digest, blob.size), blob.diff_id, blob, unit
                )
                for (what, unit, _), blob in zip(jobs, write_all(jobs, Path(tmp)))
            ]
            clock.mark("layers written")
            # Order: skeleton, runtime, the distributions (units' order), the lock.
            by_unit = {layer.unit.identity: layer for layer in made if layer.unit}
            own = [layer for layer in made if not layer.unit]
            ordered = own[:2] + [by_unit.get(u.identity) or reused[u.identity] for u in units]
            ordered.append(own[2])
            uploaded = push_layers(writer, repository, layers_repo, ordered, target.machine)
    with ThreadPoolExecutor(PUSHERS) as pool:
        copy = lambda layer: copy_base_layer(writer, base_writer, base_ref, repository, layer)  # noqa: E731
        list(pool.map(copy, base.layers))
    digest = push_image(writer, install, repository, tag, base, ordered)
    clock.mark("push")
    size = sum(layer.descriptor.size for layer in uploaded)
    log(
        f"per-package layers: uploaded {len(uploaded)} ({size} bytes), mounted "
        f"{len(ordered) - len(uploaded)}; {len(base.layers) + len(ordered)} layers in all; "
        + ", ".join(clock.spent)
    )
    return digest


def requirement_lines(install: InstallPlan) -> tuple[list[str], list[str]]:
    """(option lines, requirement lines) of every requirement set, in order. Files the sets
    read (constraints, path requirements, includes) cannot be layered: Fallback. The MLflow
    addition's constraints of a lock are the lock's own pins, resolved together here."""
    options, requirements = [], []
    for requirement_set in install.requirement_sets:
        for line in requirement_set.lines:
            if line == REQUIRE_HASHES or line == f"-c {MLFLOW_CONSTRAINTS}":
                continue
            if line.split()[0] in FILE_OPTIONS:
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
    return options, requirements


def requirement_names(lines: list[str]) -> set[str]:
    return {Requirement(line.split(" --hash=")[0]).name for line in lines}


def locked(install: InstallPlan, lines: list[str], target: Target, options: BuildOptions) -> str:
    """The plan's lock (`resolve`, or the codeset's own), else the `resolve` machinery run for
    the base's Python: PEP 751 text, URLs without user information."""
    if install.lock is not None:
        return install.lock.decode()
    try:
        return resolve(lines, target.python_version, options.index().install_env()).pylock
    except StepError as error:
        raise Fallback(f"the environment could not be resolved beforehand ({error})") from None


def refuse_sdists(pins: list[Pin], target: Target) -> None:
    lacking = without_wheel(pins)
    if lacking:
        names = ", ".join(f"{pin.name} {pin.version}" for pin in lacking)
        raise Fallback(
            f"no wheel for this base (Python {target.python}, {target.machine}, glibc "
            f"{target.glibc}) of {names}: an sdist build can touch anything"
        )


def reuse(writer: RegistryWriter, repository: str, layers_repo: str, units: list[Unit]):
    """{identity: Layer} of the units the cache holds, each mounted into `repository`."""
    found = cache.lookup(writer, layers_repo, [unit.identity for unit in units])
    reused = {}
    for unit in units:
        if unit.identity in found:
            descriptor, diff_id = found[unit.identity]
            if writer.mount(repository, descriptor.digest, layers_repo):
                reused[unit.identity] = Layer(unit.label, descriptor, diff_id, unit=unit)
    return reused


Job = tuple[str, "Unit | None", list[Entry]]


def layer_jobs(root: Path, skeleton, claimed, missing: list[Unit], install: InstallPlan,
               site: str, lock: str) -> list[Job]:  # fmt: skip
    """(what, unit, entries) of each layer to write: skeleton, runtime, missing units, lock."""
    files = lambda paths: [Entry(path, root / path.lstrip("/")) for path in paths]  # noqa: E731
    runtime = [
        Entry(f"{RUNTIME_DIR}/{name.split('/', 1)[1]}", data=data)
        for name, data in sorted(install.files.items())
        if name.startswith(f"{RUNTIME}/")
    ]
    runtime.append(Entry(f"{site}/mlflow_steps_runtime.pth", data=b"/opt/mlflow-steps\n"))
    jobs: list[Job] = [("venv", None, files(skeleton)), ("runtime module", None, runtime)]
    for unit in missing:
        paths = [path for pin in unit.pins for path in claimed.get(pin.name, [])]
        jobs.append((unit.label, unit, files(paths)))
    jobs.append(("lock", None, [Entry(LOCK_IN_IMAGE, data=lock.encode())]))
    return jobs


def write_all(jobs: list[Job], folder: Path) -> list[LayerBlob]:
    """Write every layer, two at a time (each compresses on every core)."""
    outs = [folder / f"layer-{number}.tar.gz" for number in range(len(jobs))]
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(write_layer, entries, out, source_date_epoch())
            for (_, _, entries), out in zip(jobs, outs)
        ]
        return [future.result() for future in futures]


def push_layers(writer, repository: str, layers_repo: str, layers: list[Layer], machine: str):
    """Put each layer built here into the repository: nothing when it holds it, a mount when
    the cache repository does (the builder's own small layers are the same in every image),
    else an upload, then mounted into the cache; record new distribution layers in the cache,
    `PUSHERS` at a time. Returns the uploaded ones."""

    def one(layer: Layer) -> bool:
        if layer.blob is None:
            return False
        digest = layer.descriptor.digest
        sent = False
        # A distribution layer built here was not in the cache: no mount is tried for it.
        if not writer.has_blob(repository, digest) and (
            layer.unit is not None or not writer.mount(repository, digest, layers_repo)
        ):
            writer.upload(repository, digest, layer.blob.path)
            writer.mount(layers_repo, digest, repository)
            sent = True
        if layer.unit is not None:
            cache.record(
                writer, layers_repo, layer.unit.identity, layer.descriptor, layer.diff_id,
                layer.what, ARCHITECTURES.get(machine, machine),
            )  # fmt: skip
        return sent

    with ThreadPoolExecutor(PUSHERS) as pool:
        sent = list(pool.map(one, layers))
    return [layer for layer, was_sent in zip(layers, sent) if was_sent]


def copy_base_layer(writer, base_writer, base_ref: Reference, repository: str, layer) -> None:
    """Mount the base's layer (same registry), or copy it over (another registry)."""
    if base_writer is writer and writer.mount(repository, layer.digest, base_ref.repository):
        return
    if not writer.has_blob(repository, layer.digest):
        writer.upload(repository, layer.digest, base_writer.get_blob(base_ref.repository,
                                                                     layer.digest))  # fmt: skip


def push_image(writer: RegistryWriter, install: InstallPlan, repository: str, tag: str, base,
               layers: list[Layer]) -> str:  # fmt: skip
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
    manifest = image_manifest(
        Descriptor(OCI_CONFIG, config_digest, len(config)),
        [*base.layers, *(layer.descriptor for layer in layers)],
        base_labels,
    )
    return writer.put_manifest(repository, tag, manifest, OCI_MANIFEST)

"""The `platforms` input's build: one lock, one manifest per platform, one OCI image index.

Engine-less (see `engineless`): the builder runs nothing of the base, so another CPU's image
needs no emulation.

1. The base is read from its image index (OCI image index or Docker manifest list), the
   manifest of each platform chosen by its `platform` object (image-spec image-index.md);
   a platform the index lacks is a StepError. Each platform's base is read from its files
   (`base_files.read_base`): its interpreter, Python, glibc and libraries.
2. The lock is the plan's, made before the tag (`build.plan`: uv's universal resolution for
   the base's Python, `--no-build`), so every platform gets the same versions. Each platform's
   wheels are chosen from it for that platform's tags (`<machine>`, the glibc of that
   platform's base; `wheels.pins_for`). Every platform's Python must be of one minor version
   (the bytecode and the site-packages path are shared), the one the lock is for. A
   distribution without a wheel for a platform stops the build before anything is written,
   naming it and the platform.
3. Each platform's missing layers are installed into a staged tree of its own (pypa's
   `installer`), their bytecode compiled once, by an interpreter of that minor version on the
   builder; a pure-Python distribution's layer (the same wheel, the same identity) is
   installed for the first platform only and shared by the others: one digest across the
   index. Each tree's ELF files must be for its platform's machine (`e_machine`) and find
   their libraries in the venv or that platform's base; any problem stops the build before
   anything is pushed.
4. The layers are written and pushed (`assemble.write_and_push`), each platform's manifest put
   by digest with its SBOM attached as a referrer (it names that platform's base manifest),
   then the index under the tag.
"""

from __future__ import annotations

import json
import platform as host_platform
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mlflow_steps import __version__

from ....problems import StepError
from ...oci.registry_push import RegistryWriter, sha256_digest
from ...planning.hash_pins import check_pins, pinned_hashes
from ...planning.options import BuildOptions
from ...planning.plan import STAGING, InstallPlan
from ...planning.platforms import Platform
from ...planning.resolution import read_pylock, resolution_python
from ...reading.grammar import check_digest
from ..recipe import VENV
from . import cache, host_install, installed, libraries
from .assemble import (
    Clock,
    Fallback,
    Layer,
    Log,
    attach_bill_of_materials,
    bill_of_materials,
    cache_tag,
    check_target,
    copy_base_layer,
    image_manifest_on,
    layer_jobs,
    registries,
    requirement_lines,
    requirement_names,
    reuse,
    site_of,
    write_and_push,
)
from .base_files import BaseFacts, extracted, read_base
from .engineless import (
    ENGINE_LESS,
    compiled_by,
    compiler_for,
    recorded_facts,
    remember_facts,
    skeleton,
)
from .image import (
    INDEXES,
    OCI_MANIFEST,
    BaseImage,
    Descriptor,
    Reference,
    fetch_base,
)
from .image import (
    document as image_document,
)
from .tarlayer import LayerWriters
from .units import GROUPS, Context, Unit, plan_units, room_for
from .wheels import Pin, pins_for, without_wheel

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
# ELF e_machine values (the System V ABI's registry) of the machines `platforms` names.
ELF_MACHINES = {"x86_64": 62, "aarch64": 183, "ppc64le": 21, "s390x": 22}


@dataclass
class PlatformBuild:
    """One platform of the index: its base, what the base's files say, the lock's wheels
    for it, its layers (named, reused from the cache, missing) and, once installed, its tree."""

    platform: Platform
    base: BaseImage
    facts: BaseFacts
    recorded: bool  # the facts came from the layer cache's record
    base_key: str
    pins: list[Pin]
    units: list[Unit]
    reused: dict[str, Layer]
    missing: list[Unit]
    root: Path | None = None
    installed_here: tuple[str, ...] = ()  # identities of the units installed into `root`


def base_manifests(writer: RegistryWriter, ref: Reference,
                   platforms: tuple[Platform, ...]) -> dict[Platform, BaseImage]:  # fmt: skip
    """Each platform's base: the manifest its image index names for it (a single-manifest
    base serves only its own config's platform). StepError naming the platforms it lacks."""
    where = f"base image {ref.host}/{ref.repository}:{ref.reference}"
    found = writer.get_manifest(ref.repository, ref.reference)
    if found is None:
        raise StepError(f"{where} not found")
    data, media_type, _ = found
    document = image_document(data, where)
    if media_type not in INDEXES and "manifests" not in document:
        base = fetch_base(writer, ref, "")
        own = Platform(base.config.get("os", ""), base.config.get("architecture", ""),
                       base.config.get("variant", ""))  # fmt: skip
        others = [str(p) for p in platforms if not p.matches(own.as_json())]
        if others:
            raise StepError(
                f"{where} is one image, for {own}, not an image index: it has no "
                f"{', '.join(others)}. Choose a multi-platform base (an OCI image "
                "index or Docker manifest list)"
            )
        return dict.fromkeys(platforms, base)
    entries = document.get("manifests") or []
    chosen: dict[Platform, BaseImage] = {}
    lacking: list[str] = []
    for wanted in platforms:
        entry = next((e for e in entries if wanted.matches(e.get("platform") or {})), None)
        if entry is None:
            lacking.append(str(wanted))
            continue
        digest = check_digest(str(entry.get("digest")), f"{where}: index entry")
        chosen[wanted] = fetch_base(writer, Reference(ref.host, ref.repository, digest),
                                    wanted.machine)  # fmt: skip
    if lacking:
        offered = sorted(
            repr("/".join(v for v in (p.get("os"), p.get("architecture"), p.get("variant")) if v))
            for p in (e.get("platform") or {} for e in entries)
        )
        raise StepError(
            f"{where}: its image index has no {', '.join(lacking)} (it has "
            f"{', '.join(offered) or 'no platform'}); choose a base for every platform, or "
            "fewer platforms"
        )
    return chosen


def elf_machine(path: Path) -> int | None:
    """The ELF header's e_machine (offset 18, in the file's byte order), None for no ELF."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def foreign_elf_files(root: Path, machine: str) -> list[str]:
    """The ELF files under `root` (relative paths) built for another machine than `machine`."""
    wanted = ELF_MACHINES.get(machine)
    return [
        str(path.relative_to(root))
        for path in libraries.elf_files(root)
        if wanted is not None and elf_machine(path) != wanted
    ]


def prepare(writer: RegistryWriter, base_writer: RegistryWriter, base_ref: Reference,
            repository: str, layers_repo: str, install: InstallPlan, wanted: Platform,
            base: BaseImage, distributions, names: set[str],
            base_index: str) -> PlatformBuild:  # fmt: skip
    """One platform's base read and its layers named and looked up. `base_index`: the digest
    that names the bytecode's compiler when the base's own interpreter compiles it (one for
    every platform: the pure layers are shared)."""
    room = room_for(len(base.layers))
    if room < GROUPS + 1:
        raise Fallback(f"the {wanted} base has {len(base.layers)} layers: no room below the limit")
    base_key = cache.base_identity(base.digest, VENV, install.compile_bytecode, ENGINE_LESS)
    facts = recorded_facts(writer, layers_repo, base_key)
    recorded = facts is not None
    if facts is None:
        facts = read_base(base_writer, base_ref, base, wanted.machine)
    check_target(facts.target)
    pins = pins_for(distributions, facts.target, names)
    by = compiled_by(install.compile_bytecode, facts.target.python_minor, base_index)
    context = Context(facts.target, VENV, install.compile_bytecode,
                      pure=frozenset(pin.name for pin in pins), compiled_by=by)  # fmt: skip
    units = [unit.by_builder() for unit in plan_units(pins, context, room)]
    return PlatformBuild(wanted, base, facts, recorded, base_key, pins, units, {}, [])


def check_together(builds: list[PlatformBuild], lock_python: str) -> None:
    """StepError (nothing pushed) when a platform lacks a wheel, when the platforms' Pythons
    differ in minor version or from the lock's, or when the lock gives platforms different
    versions of one distribution."""
    problems = []
    minors = {"{}.{}".format(*b.facts.target.python_minor) for b in builds}
    if len(minors) > 1:
        problems.append(
            "the platforms' bases have different Python minor versions ("
            + ", ".join(f"{b.platform}: {b.facts.python}" for b in builds)
            + "): the bytecode and site-packages are shared; choose a base with one Python "
            "version on every platform"
        )
    elif minors != {lock_python}:
        problems.append(
            f"the lock was resolved for Python {lock_python}, the base has Python "
            f"{builds[0].facts.python}: set python_version to {minors.pop()}"
        )
    for build in builds:
        for pin in without_wheel(build.pins):
            target = build.facts.target
            problems.append(
                f"{pin.name} {pin.version} has no wheel for {build.platform} (Python "
                f"{target.python}, {target.machine}, glibc {target.glibc}); the index offers "
                "none that fits, and the builder never builds sdists"
            )
    versions: dict[str, dict[str, str]] = {}
    for build in builds:
        for pin in build.pins:
            versions.setdefault(pin.name, {})[str(build.platform)] = pin.version
    for name, found in sorted(versions.items()):
        if len(set(found.values())) > 1:
            problems.append(
                f"the lock gives {name} different versions per platform ("
                + ", ".join(f"{p}: {v}" for p, v in sorted(found.items()))
                + "); pin one version in the requirements"
            )
    if problems:
        raise StepError("platforms: nothing was pushed:\n" + "\n".join(f"  {p}" for p in problems))


def build_index(
    install: InstallPlan,
    options: BuildOptions,
    tag: str,
    platforms: tuple[Platform, ...],
    log: Log,
    base_digest: str = "",
) -> str:
    """Build `install` for every platform and push the image index as
    `<registry>/<repository>:<tag>`; returns the index's digest. The plan carries the lock
    (`build.plan` resolved it for every platform). Raises StepError (nothing pushed) or
    Fallback (the codeset needs an engine: the caller says none can stand in).
    `base_digest`: the base index's digest the tag hashes (empty: read by its tag)."""
    clock = Clock()
    if install.lock is None:
        raise StepError(
            "platforms: a requirements file hashed on every line is installed as it is, and "
            "gives no lock for every platform; give a lock that covers them (pylock.toml, a uv "
            "project) or the unhashed requirements (the builder resolves them for every platform)"
        )
    lock = install.lock.decode()
    repository = options.repository
    writer, base_writer, base_ref = registries(install, options, base_digest)
    layers_repo = cache.cache_repository(repository)
    compile_script = install.files[f"{STAGING}/compile-bytecode.py"]
    index = options.index()
    _, _, names = requirement_lines(install)
    distributions = read_pylock(lock, "the lock")
    direct = requirement_names(names)
    bases = base_manifests(base_writer, base_ref, platforms)
    # What names the bytecode's compiler when the base's own interpreter compiles: the index
    # digest the tag hashes, else the manifest of the platform whose interpreter runs (never a
    # tag, which may name other bytes by then).
    here = host_platform.machine()
    own = next((p for p in platforms if p.machine == here), platforms[0])
    compiler_base = base_digest or bases[own].digest

    def read(wanted: Platform) -> PlatformBuild:
        return prepare(writer, base_writer, base_ref, repository, layers_repo, install,
                       wanted, bases[wanted], distributions, direct,
                       compiler_base)  # fmt: skip

    with ThreadPoolExecutor(len(platforms)) as readers:  # each base's layers read at once
        builds = list(readers.map(read, platforms))
    check_together(builds, resolution_python(install, options.python_version)[0])
    user_hashes = pinned_hashes(install)
    for build in builds:
        check_pins(build.pins, user_hashes)
    clock.mark("bases read")
    for build in builds:  # after every check: a mount is a write
        build.reused = reuse(writer, repository, layers_repo, build.units)
        build.missing = [u for u in build.units if u.identity not in build.reused]
        log(
            f"platforms: {build.platform}: Python {build.facts.python}, glibc "
            f"{build.facts.target.glibc}; {len(build.units)} layers for {len(build.pins)} "
            f"distributions, {len(build.reused)} already in the registry, "
            f"{len(build.missing)} to install"
        )
    target = builds[0].facts.target
    site = site_of(target)
    compiler = None
    if install.compile_bytecode and any(build.missing for build in builds):
        compiling = next(b for b in builds if b.platform == own)  # compiler_base names its base
        compiler = compiler_for(
            compiling.facts, lambda: extracted(base_writer, base_ref, compiling.base)
        )
    with (
        tempfile.TemporaryDirectory(prefix="mlflow-steps-platforms-") as folder,
        LayerWriters() as pool,
    ):
        tmp = Path(folder)
        done: set[str] = set()
        problems: list[str] = []
        for number, build in enumerate(builds):
            build.root = tmp / f"staged-{number}"
            skeleton(build.root, build.facts)
            mine = [u for u in build.missing if u.identity not in done]
            build.installed_here = tuple(u.identity for u in mine)
            done.update(build.installed_here)
            host_install.install_wheels(
                [pin for unit in mine for pin in unit.pins], build.root, VENV, site,
                target.python_minor, index, compile_script if compiler else None,
                binary=True, python=compiler,
            )  # fmt: skip
            venv = build.root / VENV.lstrip("/")
            foreign = foreign_elf_files(venv, build.facts.machine)
            if foreign:
                problems.append(
                    f"{build.platform}: files for another machine than {build.facts.machine}: "
                    + ", ".join(foreign[:5])
                    + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
                )
            lacking = libraries.missing_libraries(venv, build.facts.libraries)
            problems += [f"{build.platform}: {line}" for line in libraries.problems(lacking)]
        clock.mark("installed")
        if problems:
            raise StepError(
                "platforms: the installed packages do not fit their platform's base; nothing "
                "was pushed:\n"
                + "".join(f"  {line}\n" for line in problems)
                + "Choose a base that has the libraries, or fewer platforms."
            )
        shared: dict[str, Layer] = {}
        entries = []
        for build in builds:
            assert build.root is not None
            claimed, skeleton_paths = installed.split(build.root, VENV, site, cache_tag(target))
            mine = [u for u in build.missing if u.identity in build.installed_here]
            bom = bill_of_materials(install, lock, build.base, index)
            jobs = layer_jobs(build.root, skeleton_paths, claimed, mine, install, site, lock, bom)
            blobs = build.root.with_name(f"layers-{build.root.name}")  # one folder each
            blobs.mkdir()
            made, uploaded = write_and_push(writer, repository, layers_repo, jobs, blobs,
                                            build.facts.machine, pool.executor())  # fmt: skip
            own_layers = [layer for layer in made if not layer.unit]
            shared.update(zip([u.identity for u in mine], [layer for layer in made if layer.unit]))
            ordered: list[Layer] = [own_layers[0], own_layers[1]]
            if not build.recorded:
                remember_facts(writer, repository, layers_repo, build.base_key, build.facts,
                               own_layers[0])  # fmt: skip
            ordered += [shared.get(u.identity) or build.reused[u.identity] for u in build.units]
            ordered.append(own_layers[2])
            for layer in build.base.layers:
                copy_base_layer(writer, base_writer, base_ref, repository, layer)
            manifest = platform_manifest(writer, install, repository, build.base, ordered)
            attach_bill_of_materials(writer, repository, manifest.digest, bom, log)
            entries.append((build.platform, manifest))
            size = sum(layer.descriptor.size for layer in uploaded)
            log(
                f"platforms: {build.platform}: manifest {manifest.digest}; uploaded "
                f"{len(uploaded)} layers ({size} bytes), "
                f"{len(ordered) - len(uploaded)} mounted or shared"
            )
        clock.mark("layers written and pushed")
    clock.mark("staged trees removed")
    digest = push_index(writer, repository, tag, entries, install.base_image,
                        writer_digest(base_writer, base_ref))  # fmt: skip
    clock.mark("index pushed")
    log(
        f"platforms: image index {digest} for {', '.join(map(str, platforms))}; "
        + ", ".join(clock.spent)
        + f"; builder {__version__}"
    )
    return digest


def writer_digest(writer: RegistryWriter, ref: Reference) -> str:
    """The digest the base's reference names now (its index's)."""
    found = writer.get_manifest(ref.repository, ref.reference)
    return sha256_digest(found[0]) if found else ""


def platform_manifest(writer: RegistryWriter, install: InstallPlan, repository: str,
                      base: BaseImage, layers: list[Layer]) -> Descriptor:  # fmt: skip
    """One platform's config and manifest (`assemble.image_manifest_on`), the manifest put by
    its digest; its descriptor."""
    manifest = image_manifest_on(writer, install, repository, base, layers)
    digest = writer.put_manifest(repository, sha256_digest(manifest), manifest, OCI_MANIFEST)
    return Descriptor(OCI_MANIFEST, digest, len(manifest))


def push_index(writer: RegistryWriter, repository: str, tag: str,
               entries: list[tuple[Platform, Descriptor]], base_name: str,
               base_digest: str) -> str:  # fmt: skip
    """The OCI image index of `entries` (each manifest with its `platform`), annotated with
    the base's name and index digest, put under `tag`; its digest."""
    annotations = {"org.opencontainers.image.base.name": base_name}
    if base_digest:
        annotations["org.opencontainers.image.base.digest"] = base_digest
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {**descriptor.as_json(), "platform": wanted.as_json()} for wanted, descriptor in entries
        ],
        "annotations": annotations,
    }
    data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return writer.put_manifest(repository, tag, data, OCI_INDEX)

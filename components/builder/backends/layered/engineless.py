"""The engine-less build (`--engine none`): per-package layers with nothing but HTTP.

No container engine, no root, no user namespaces; the base image is never pulled or run:

1. Read the base's manifest and config, and its layers' file lists (`base_files`: streamed
   once, kept by layer digest): its interpreter, Python version, glibc and libraries.
2. Resolve for that Python and `<machine>-manylinux_<glibc>` (`uv pip compile`, no builds);
   every distribution must have a wheel for the base's tags, else `Fallback`. With no record
   of the base, the resolution for a guess runs while its layers are read, and is kept when
   the guess resolves as the base does.
3. Name the layers (`units`, each installed by the builder) and mount those the layer cache
   holds.
4. Download the missing wheels (sha256 checked against the lock), unpack them with pypa's
   `installer` into a staged tree, beside a venv skeleton written here (pyvenv.cfg naming the
   base's interpreter, bin/python links); compile their bytecode for the base's minor version
   (an interpreter of that minor version on the builder, which never imports the packages);
   check every ELF file's DT_NEEDED against the venv and the base (`libraries`): a missing
   library stops the build before anything is pushed.
5. Write and push the layers, config and manifest as the engine path does (`assemble`).

`Fallback` (nothing pushed) says why an environment needs the engine path.
"""

from __future__ import annotations

import json
import platform
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from mlflow_steps import __version__

from .... import confinement
from ....problems import StepError
from ....subprocess_env import minimal_env
from ...oci.registry_push import RegistryWriter
from ...planning.core_metadata import read_ahead
from ...planning.hash_pins import check_pins, pinned_hashes
from ...planning.options import BuildOptions
from ...planning.plan import STAGING, InstallPlan
from ...planning.resolution import read_pylock, resolve, staged_files
from ..recipe import VENV
from . import cache, host_install, installed, libraries, staging
from .assemble import (
    GUESSED_GLIBC,
    Clock,
    Fallback,
    Layer,
    Log,
    bill_of_materials,
    cache_tag,
    check_hash_closure,
    check_target,
    guess_python,
    layer_jobs,
    publish,
    refuse_sdists,
    registries,
    requirement_lines,
    requirement_names,
    reuse,
    site_of,
    write_and_push,
)
from .base_files import BaseFacts, extracted, interpreter_argv, read_base
from .image import ARCHITECTURES, fetch_base
from .tarlayer import LayerWriters
from .units import GROUPS, Context, plan_units, room_for
from .wheels import Target, pins_for

ENGINE_LESS = "engine-less"  # in the base record's identity, where the engine path has uv's version
BASE_FACTS = "io.github.mlflow-steps.base-facts"
# The newest and oldest manylinux tags uv's --python-platform names (uv 0.8).
NEWEST_MANYLINUX, OLDEST_MANYLINUX = (2, 40), (2, 17)


def uv_platform(target: Target) -> str:
    """uv's --python-platform for the base: `x86_64-manylinux_2_36`, the glibc capped at the
    newest tag uv knows (a wheel for a newer glibc does not exist yet)."""
    major, minor = (int(part) for part in target.glibc.split(".")[:2])
    if (major, minor) < OLDEST_MANYLINUX:
        raise Fallback(
            f"the base's glibc {target.glibc} is older than manylinux2014 (2.17), the oldest "
            "platform the resolver targets"
        )
    major, minor = min((major, minor), NEWEST_MANYLINUX)
    return f"{target.machine}-manylinux_{major}_{minor}"


def skeleton(root: Path, facts: BaseFacts) -> None:
    """The venv's own files under `root`: pyvenv.cfg (PEP 405: `home` is the base
    interpreter's folder), bin/python linked to the base's interpreter, python3 and python3.X
    linked to it, lib64 -> lib (as `python -m venv` and uv make them on 64-bit Linux)."""
    venv = root / VENV.lstrip("/")
    (venv / "bin").mkdir(parents=True)
    minor = "{}.{}".format(*facts.target.python_minor)
    (venv / "lib" / f"python{minor}" / "site-packages").mkdir(parents=True)
    home = facts.executable.rpartition("/")[0] or "/"
    (venv / "pyvenv.cfg").write_text(
        f"home = {home}\nimplementation = CPython\nversion_info = {facts.python}\n"
        "include-system-site-packages = false\n"
    )
    (venv / "bin" / "python").symlink_to(facts.executable)
    for name in ("python3", f"python{minor}"):
        (venv / "bin" / name).symlink_to("python")
    (venv / "lib64").symlink_to("lib")


def compiler_for(facts: BaseFacts, base_rootfs: Callable[[], Path]) -> host_install.Python:
    """An interpreter of the base's minor version: the builder's own or one uv finds, else the
    base's own run from its extracted files (`base_rootfs()`), `Untrusted`: confined to
    reading those files (`confinement`), checked to answer with its minor version. Raises
    Fallback when none can, or when this kernel cannot confine the base's (no Landlock)."""
    minor = facts.target.python_minor
    python = host_install.interpreter_for(minor)
    if python:
        return [python]
    install_python = (
        f"install Python {facts.target.python_version} on the builder (`uv python install`) or "
        "set compile_bytecode=false"
    )
    if not confinement.available():
        raise Fallback(
            f"the base's Python {facts.python} would compile the bytecode on the builder, "
            "where the registry's and the index's credentials are, and this kernel has no "
            f"Landlock (or this machine no seccomp filter of ours) to confine it; {install_python}"
        )
    rootfs = base_rootfs()
    base = host_install.Untrusted(tuple(interpreter_argv(rootfs, facts)), (str(rootfs),))
    asked = "import sys; print('%d.%d' % sys.version_info[:2])"
    # The base may be the codeset's: it runs confined, and without the builder's environment.
    argv = confinement.confined([*base.argv, "-I", "-c", asked], list(base.reads), [])
    # Its output to files (RLIMIT_FSIZE bounds them), read in part; a time limit.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            returncode = subprocess.run(argv, stdout=out, stderr=err, env=minimal_env(),
                                        timeout=120).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            returncode = -1
        said, errors = (host_install.tail(f) for f in (out, err))
    if returncode != 0 or said.strip() != "{}.{}".format(*minor):
        raise Fallback(
            f"the base's Python {facts.python} could not be run from its files to compile the "
            f"bytecode ({errors.strip()[-300:] or said.strip()[-300:]}); {install_python}"
        )
    return base


def compiled_by(compile_bytecode: bool, minor: tuple[int, int], base_digest: str) -> str:
    """Who compiles the bytecode, for the layer identity (`units.Context.compiled_by`): "" for
    an interpreter the builder trusts (its own, or one uv finds); "base <digest>" when the
    base's own will, so that bytecode a base wrote is never reused under another base."""
    if not compile_bytecode or host_install.interpreter_for(minor):
        return ""
    return f"base {base_digest}"


def recorded_facts(writer: RegistryWriter, layers_repo: str, key: str) -> BaseFacts | None:
    """The base's facts an earlier engine-less build recorded in the layer cache (so a new
    builder pod does not read the base's layers again); None when there is no record."""
    found = writer.get_manifest(layers_repo, key)
    if found is None:
        return None
    try:
        text = json.loads(found[0])["annotations"][BASE_FACTS]
    except (KeyError, ValueError):
        return None
    return BaseFacts.from_json(text)


def remember_facts(writer: RegistryWriter, repository: str, layers_repo: str, key: str,
                   facts: BaseFacts, skeleton_layer: Layer) -> None:  # fmt: skip
    """Record the base's facts under `key`, beside the venv skeleton's layer."""
    digest = skeleton_layer.descriptor.digest
    if writer.has_blob(layers_repo, digest) or writer.mount(layers_repo, digest, repository):
        cache.record(
            writer, layers_repo, key, skeleton_layer.descriptor, skeleton_layer.diff_id,
            "venv skeleton, engine-less", ARCHITECTURES.get(facts.machine, facts.machine),
            {BASE_FACTS: facts.as_json()},
        )  # fmt: skip


def engineless_lock(install: InstallPlan, lines: list[str], target: Target,
                    options: BuildOptions) -> str:  # fmt: skip
    if install.lock is not None:
        return install.lock.decode()
    env, beside = options.index().install_env(), staged_files(install.files)
    try:
        return resolve(lines, target.python_version, env, beside, uv_platform(target)).pylock
    except StepError as error:
        raise Fallback(f"the environment could not be resolved beforehand ({error})") from None


def same_resolution(guess: Target, target: Target) -> bool:
    """Whether resolving for `guess` gives what resolving for `target` gives: `engineless_lock`
    reads only the Python minor version and uv's platform (the glibc capped at what uv names).
    """
    if guess.python_version != target.python_version or guess.machine != target.machine:
        return False
    try:
        return uv_platform(guess) == uv_platform(target)
    except Fallback:
        return False


def build_engineless(install: InstallPlan, options: BuildOptions, tag: str, log: Log,
                     base_digest: str = "") -> str:  # fmt: skip
    """Build `install` without an engine and push it as `<registry>/<repository>:<tag>`;
    returns the manifest digest. `base_digest`: the base's digest the tag hashes (read at
    that digest; empty: by its tag). Raises Fallback (nothing pushed) or StepError."""
    clock = Clock()
    repository = options.repository
    writer, base_writer, base_ref = registries(install, options, base_digest)
    layers_repo = cache.cache_repository(repository)
    compile_script = install.files[f"{STAGING}/compile-bytecode.py"]
    index = options.index()
    base = fetch_base(base_writer, base_ref, platform.machine())
    room = room_for(len(base.layers))
    if room < GROUPS + 1:
        raise Fallback(f"the base has {len(base.layers)} layers: no room below the limit")
    base_key = cache.base_identity(base.digest, VENV, install.compile_bytecode, ENGINE_LESS)
    with ExitStack() as stack:
        facts = recorded = recorded_facts(writer, layers_repo, base_key)
        # With no record of the base (its first build here: a cold one), the layer writers
        # start while its layers are read, on the core that leaves idle; else when needed.
        early = stack.enter_context(LayerWriters()) if facts is None else None
        options_lines, constraint_lines, names = requirement_lines(install)
        lines = options_lines + constraint_lines + names
        with ThreadPoolExecutor(1) as ahead:
            guess = None
            if facts is None:
                # Resolved while the base's layers are read, for a guess of its Python (the
                # config's PYTHON_VERSION, else the builder's) and glibc (Debian 12's); the lock
                # is used only when the base turns out to resolve the same (`same_resolution`).
                guess = Target(guess_python(base.config), platform.machine(), GUESSED_GLIBC)
                guessed = ahead.submit(engineless_lock, install, lines, guess, options)
                facts = read_base(base_writer, base_ref, base, platform.machine())
            target = facts.target
            check_target(target)
            clock.mark("base record" if recorded else "base read")
            if guess is not None and same_resolution(guess, target):
                lock = guessed.result()  # its Fallback is the one this target would raise
            else:
                lock = engineless_lock(install, lines, target, options)
        locked_dists = read_pylock(lock, "the lock")
        pins = pins_for(locked_dists, target, requirement_names(names))
        refuse_sdists(pins, target)
        check_pins(pins, pinned_hashes(install))  # before any layer is mounted or pushed
        check_hash_closure(install, target, options, uv_platform(target))
        by = compiled_by(install.compile_bytecode, target.python_minor, base.digest)
        context = Context(target, VENV, install.compile_bytecode,
                          pure=frozenset(pin.name for pin in pins), compiled_by=by)  # fmt: skip
        units = [unit.by_builder() for unit in plan_units(pins, context, room)]
        reused = reuse(writer, repository, layers_repo, units)
        # The bill of materials' licences, meanwhile: those the reused layers' records do not
        # carry.
        read_ahead(locked_dists, index)
        missing = [unit for unit in units if unit.identity not in reused]
        site = site_of(target)
        log(
            f"engine-less: Python {target.python} at {facts.executable}, glibc {target.glibc}, "
            f"{len(facts.libraries)} libraries in the base; {len(units)} layers for {len(pins)} "
            f"distributions, {len(reused)} already in the registry (mounted), {len(missing)} to "
            "install" + (": " + ", ".join(unit.label for unit in missing) if missing else "")
        )
        clock.mark("resolve and look up")
        compiler = None
        if install.compile_bytecode and missing:  # before anything is written or pushed
            compiler = compiler_for(facts, lambda: extracted(base_writer, base_ref, base))
            if isinstance(compiler, host_install.Untrusted):
                log(f"engine-less: bytecode compiled by the base's own Python {target.python}, "
                    "run from its files, confined (Landlock, seccomp)")  # fmt: skip
        mine = [pin for unit in missing for pin in unit.pins]
        with tempfile.TemporaryDirectory(prefix="mlflow-steps-wheels-") as wheel_folder:
            pool = early or stack.enter_context(
                LayerWriters(processes=len(missing) >= host_install.WORKERS_FROM)
            )
            wheels = host_install.download_all(mine, index, Path(wheel_folder))
            # The staged tree (and the layers' files) in memory when there is room (`staging`).
            needed = staging.unpacked_size(wheels)
            tmp = Path(stack.enter_context(staging.staged(needed, "mlflow-steps-layers-")))
            root = tmp / "staged"
            skeleton(root, facts)
            with ExitStack() as compiling:
                # The bytecode is compiled (another process) as each wheel is unpacked, and
                # the library check (this one) runs while it ends.
                bytecode = None
                if compiler:
                    bytecode = compiling.enter_context(
                        host_install.Compiler(root, site, target.python_minor, compile_script,
                                              compiler, Path(wheel_folder))
                    )  # fmt: skip
                host_install.install_wheels(mine, root, VENV, site, target.python_minor, index,
                                            None, binary=True, workers=pool,
                                            downloaded=wheels, compiler=bytecode)  # fmt: skip
                lacking = libraries.missing_libraries(root / VENV.lstrip("/"), facts.libraries)
            clock.mark("installed")
            if lacking:
                raise StepError(
                    "the base image lacks shared libraries that installed packages need; "
                    "nothing was pushed:\n"
                    + "".join(f"  {line}\n" for line in libraries.problems(lacking))
                    + "Choose a base that has them, or build with an engine (--engine buildah, "
                    "or the buildah / Kaniko builder) and set system_packages."
                )
            claimed, skeleton_paths = installed.split(root, VENV, site, cache_tag(target))
            bom = bill_of_materials(install, lock, base, index)
            jobs = layer_jobs(root, skeleton_paths, claimed, missing, install, site, lock, bom)
            made, uploaded = write_and_push(
                writer, repository, layers_repo, jobs, tmp, target.machine, pool.executor(),
                consume=True,
            )  # fmt: skip
            clock.mark("layers written and pushed")
        own = [layer for layer in made if not layer.unit]
        by_unit = dict(zip([u.identity for u in missing], [lay for lay in made if lay.unit]))
        ordered: list[Layer] = [own[0], own[1]]
        if recorded is None:
            remember_facts(writer, repository, layers_repo, base_key, facts, own[0])
        ordered += [by_unit.get(u.identity) or reused[u.identity] for u in units]
        ordered.append(own[2])
        digest = publish(writer, base_writer, base_ref, install, repository, tag, base, ordered,
                         bom, log)  # fmt: skip
        clock.mark("push")
        size = sum(layer.descriptor.size for layer in uploaded)
        log(
            f"engine-less: uploaded {len(uploaded)} ({size} bytes), mounted "
            f"{len(ordered) - len(uploaded)}; {len(base.layers) + len(ordered)} layers in all; "
            + ", ".join(clock.spent)
            + f"; builder {__version__}"
        )
        return digest

"""Resolution: requirements turned into exact distributions with hashes, and locks read.

- `resolve(lines, python, build_args)` runs `uv pip compile --generate-hashes --format
  pylock.toml --python-version X --python-platform P` against the index the install uses (the
  PIP_* build arguments, as uv's UV_* settings; the wheels' metadata kept between
  resolutions, the index's pages read again each time: `uv_cache`), with the options the
  install gives uv (`uv_options`: pip's meaning, `--index-strategy unsafe-best-match`) and returns a
  `Resolution`: every distribution with its exact version, environment marker, hashes and
  wheel file names and URLs (PEP 751).
- `read_pylock(text, where)` reads a PEP 751 `pylock.toml` into the same shape.
- `locked_lines(distributions)` writes them as requirement lines with `--hash=` options, which
  both uv and pip install in hash-checking mode.
- `plan_distributions(plan, build_args, python)`: every distribution a plan installs, for the
  per-package layered assembly (from the plan's lock, else resolved now).
- `resolved_plan(plan, build_args, python)` is the `resolve` input: the plan with each
  requirement set replaced by its resolution (cumulative: set N is resolved with sets 1..N, so
  build tools and dependencies agree), and the lock to save in the image.

"""

from __future__ import annotations

import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from packaging.markers import InvalidMarker, Marker
from packaging.utils import InvalidName, canonicalize_name
from packaging.version import InvalidVersion, Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ...problems import StepError
from ...subprocess_env import EMPTY_HOME, minimal_env
from ..reading.uv_options import UV_INDEX_ENV, uv_install
from .hash_pins import check_resolution
from .indexes import ambiguous_url
from .plan import (
    LOCK_FILE,
    REQUIRE_HASHES,
    STAGING,
    InstallPlan,
    RequirementSet,
    find_uv,
    lines_file,
    set_files,
)
from .uv_cache import resolution_cache

# Debian 12's glibc (the python:3.x images' base): wheels for older glibc versions fit too.
PLATFORM = f"{platform.machine() or 'x86_64'}-manylinux_2_36"
_BASE_PYTHON = re.compile(r"(?:^|/)python:(?P<version>\d+\.\d+)")
# uv's words when --no-build stops it (an sdist, a path or a VCS requirement).
NEEDS_BUILD = re.compile(r"building (source distributions )?is disabled|--no-build", re.I)
NO_WHEEL = re.compile(r"Because (\S+?)==(\S+) has no usable wheels")
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s\"']+@", re.IGNORECASE)


@dataclass(frozen=True)
class DistributionFile:
    """One file of a distribution, as the lock names it: `name` (e.g.
    `six-1.16.0-py2.py3-none-any.whl`), `url` ("" when the lock gives none) and `sha256`."""

    name: str
    url: str
    sha256: str


@dataclass(frozen=True)
class Distribution:
    """One locked distribution: PEP 503 `name`, exact `version`, PEP 508 `marker` ("" for
    always), its wheels and sdist (`files`)."""

    name: str
    version: str
    marker: str = ""
    files: tuple[DistributionFile, ...] = ()

    @property
    def hashes(self) -> tuple[str, ...]:
        return tuple(sorted({f"sha256:{f.sha256}" for f in self.files}))

    @property
    def wheels(self) -> tuple[DistributionFile, ...]:
        return tuple(f for f in self.files if f.name.endswith(".whl"))


@dataclass(frozen=True)
class Resolution:
    """What `resolve` found: the distributions, sorted by name, and the PEP 751 text (URLs
    without user information)."""

    distributions: tuple[Distribution, ...]
    pylock: str


def resolve(
    lines: list[str],
    python: str,
    build_args: Mapping[str, str],
    beside: Mapping[str, bytes] | None = None,
    platform: str = PLATFORM,
    universal: bool = False,
) -> Resolution:
    """Exact distributions for `lines` (pip requirement and option lines) on Python `python`
    (major.minor) and `platform` (uv's --python-platform, default `PLATFORM`); with
    `universal`, for every platform at once instead (uv's `--universal`: one version of each
    distribution wherever it can, environment markers where it forks, every wheel of each
    version listed), the `platforms` input's lock; from the index
    named by `build_args` (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST). `beside`:
    files the lines name (`-c FILE`), by relative path. Raises StepError with uv's reason."""
    with tempfile.TemporaryDirectory(prefix="mlflow-steps-resolve-") as tmp:
        for name, data in (beside or {}).items():
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / name).write_bytes(data)
        source, out = Path(tmp) / "mlflow-steps-requirements.in", Path(tmp) / "pylock.out.toml"
        uv = uv_install(lines)  # the meaning pip gives the lines, as the install gives it
        source.write_bytes(lines_file(uv.lines))
        argv = [
            uv_binary(), "pip", "compile", "--no-config", "--quiet", "--no-header",
            "--generate-hashes", "--no-build", "--format", "pylock.toml",
            "--python-version", python,
            *(["--universal"] if universal else ["--python-platform", platform]), *uv.args,
            str(source), "--output-file", str(out),
        ]  # fmt: skip
        env = uv_env(build_args, tmp)
        if uv.own_index:  # the lines name the index: pip drops the builder's, so does uv
            env = {k: v for k, v in env.items() if k not in UV_INDEX_ENV}
        with resolution_cache() as cache:
            if cache:  # else uv's own, under HOME (`tmp`), removed with it
                env["UV_CACHE_DIR"] = cache
            done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=tmp)
        if done.returncode != 0 and NEEDS_BUILD.search(done.stderr):
            said = " ".join(without_userinfo(done.stderr).split())
            named = ", ".join(sorted({f"{n} {v}" for n, v in NO_WHEEL.findall(said)}))
            raise StepError(
                f"resolve: {named or 'a requirement'} has no wheel (an sdist, a path or a VCS "
                "checkout), and resolution never builds one: building runs the package's own "
                "code, here beside the index and registry credentials. Build the environment "
                "without resolve (layering=single): its install phase builds it, without "
                f"credentials. uv said: {said}"
            )
        if done.returncode != 0:
            raise StepError(
                f"resolve: the requirements cannot be resolved for Python {python} on "
                f"{'every platform (universal)' if universal else platform} against the index: "
                f"{without_userinfo(done.stderr.strip())}"
            )
        text = without_userinfo(out.read_text(encoding="utf-8"))
    return Resolution(tuple(read_pylock(text, "the resolution")), text)


def file_name_of(url: str) -> str:
    """The file name a file URL names: its path's last segment, percent-decoded."""
    return unquote(PurePosixPath(urlsplit(url).path).name)


def odd_file_name(file: DistributionFile) -> str:
    """Why a lock's file `name`, or the name its URL gives, is not a plain file name (a path
    separator, a leading dot, a control character: `..%2Fx.whl` would be written outside
    the download folder), or ""."""
    for name in (file.name, file_name_of(file.url) if file.url else ""):
        if name and ("/" in name or "\\" in name or name.startswith(".")
                     or any(ord(c) < 32 or ord(c) == 127 for c in name)):  # fmt: skip
            return f"the file name {name!r} is not a plain file name"
    return ""


def checked_fields(package: dict) -> tuple[str, str, str]:
    """(name, version, marker) of a lock's package, each checked against its grammar: a PEP 508
    name, a PEP 440 version, a PEP 508 marker. They are written into requirement lines
    (`locked_lines`), index page paths and messages, so nothing else may pass: a newline in a
    marker would add a line of its own. Raises ValueError naming the field."""
    raw_name, raw_version = str(package.get("name", "")), str(package.get("version", ""))
    raw_marker = str(package.get("marker", ""))
    try:
        name = canonicalize_name(raw_name, validate=True)
    except InvalidName:
        raise ValueError(f"the name {raw_name!r} is not a PEP 508 name") from None
    try:
        Version(raw_version)
        # packaging admits white space around a version; a line break would split the line.
        if raw_version != raw_version.strip():
            raise InvalidVersion(raw_version)
    except InvalidVersion:
        raise ValueError(f"the version {raw_version!r} is not a PEP 440 version") from None
    try:
        marker = str(Marker(raw_marker)) if raw_marker else ""
    except InvalidMarker:
        raise ValueError(f"the marker {raw_marker!r} is not a PEP 508 marker") from None
    return name, raw_version, marker


def read_pylock(text: str, where: str) -> list[Distribution]:
    """The `[[packages]]` of a PEP 751 lock, sorted by name; raises StepError for what the
    builder cannot install as a lock: no version, no hash, a directory or VCS source, a name,
    version or marker outside its grammar (`checked_fields`), a file name that is not plain
    (`odd_file_name`)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StepError(f"{where}: not valid TOML ({exc})") from None
    except RecursionError:
        raise StepError(f"{where}: nested too deeply to be a lock") from None
    problems: list[str] = []
    found: list[Distribution] = []
    packages = data.get("packages")
    if not isinstance(packages, list):
        raise StepError(f"{where}: no [[packages]] table (PEP 751)")
    for package in packages:
        if not isinstance(package, dict):
            raise StepError(f"{where}: a [[packages]] entry is not a table (PEP 751)")
        name = str(package.get("name", ""))
        at = f"{where}: package {name!r}"
        if "directory" in package or "vcs" in package:
            problems.append(
                f"{at} comes from a directory or a VCS checkout; the builder installs "
                "distributions from the index only (the codeset is mounted at run time)"
            )
            continue
        files = [
            DistributionFile(
                str(entry.get("name") or entry.get("url", "").rsplit("/", 1)[-1]),
                str(entry.get("url", "")),
                str(hashes.get("sha256", ""))
                if isinstance(hashes := entry.get("hashes"), dict)
                else "",
            )
            for entry in [*package.get("wheels", []), package.get("sdist"), package.get("archive")]
            if isinstance(entry, dict)
        ]
        unclear = [(f.url, ambiguous_url(f.url)) for f in files if f.url]
        odd = [why for why in map(odd_file_name, files) if why]
        if not name or not package.get("version"):
            problems.append(f"{at} has no exact `version`")
            continue
        try:
            canonical, version, marker = checked_fields(package)
        except ValueError as error:
            problems.append(f"{at}: {error}")
            continue
        if odd:
            problems.append(f"{at}: {odd[0]}")
        elif any(why for _, why in unclear):
            url, why = next((url, why) for url, why in unclear if why)
            problems.append(f"{at}: the file URL {url!r} is refused: {why}")
        elif not files or not all(f.sha256 for f in files):
            problems.append(f"{at} has a file without a sha256 hash")
        else:
            found.append(Distribution(canonical, version, marker, tuple(files)))
    if problems:
        raise StepError(problems)
    return sorted(found, key=lambda d: d.name)


def locked_lines(distributions: tuple[Distribution, ...] | list[Distribution]) -> list[str]:
    """`name==version ; marker --hash=sha256:...` per distribution, sorted."""
    lines = []
    for dist in distributions:
        marker = f" ; {dist.marker}" if dist.marker else ""
        hashes = " ".join(f"--hash={h}" for h in dist.hashes)
        lines.append(f"{dist.name}=={dist.version}{marker} {hashes}")
    return sorted(lines)


def resolved_plan(
    plan: InstallPlan, build_args: Mapping[str, str], fallback_python: str, universal: bool = False
) -> InstallPlan:
    """The `resolve` input: each requirement set of a venv plan replaced by its resolution
    (hash-checked), the last (whole) resolution saved as `LOCK_FILE`. A plan that already is
    a lock (a set with `--require-hashes`) is kept as it is; so is a conda plan. `universal`:
    resolved for every platform at once (`resolve`'s), the `platforms` input's lock."""
    if plan.installer != "venv" or any(s.locked for s in plan.requirement_sets):
        return plan
    python, notes = resolution_python(plan, fallback_python)
    sets, files, so_far = [], dict(plan.files), []
    staged = staged_files(files)
    resolution = None
    for requirement_set in plan.requirement_sets:
        so_far += list(requirement_set.lines)
        resolution = resolve(so_far, python, build_args, staged, universal=universal)
        options = [line for line in requirement_set.lines if line.startswith("-")]
        lines = (REQUIRE_HASHES, *options, *locked_lines(resolution.distributions))
        sets.append(RequirementSet(requirement_set.name, tuple(lines)))
        files.update(set_files(RequirementSet(requirement_set.name, tuple(lines))))
    assert resolution is not None
    # The user's hashes hold over what the builder resolved (pip's hash-checking mode).
    check_resolution(plan, resolution.distributions)
    files[LOCK_FILE] = resolution.pylock.encode()
    notes.append(
        f"resolve: {len(resolution.distributions)} distributions locked for Python {python} "
        f"on {'every platform (universal)' if universal else PLATFORM}"
    )
    return replace(plan, requirement_sets=tuple(sets), files=files, notes=(*plan.notes, *notes))


def plan_distributions(
    plan: InstallPlan, build_args: Mapping[str, str], fallback_python: str
) -> tuple[Distribution, ...]:
    """Every distribution a venv plan installs, exact, with hashes and wheel files: read from
    its lock (a resolved plan, a uv project, a pylock.toml), else resolved now (e.g. hashed
    requirements, whose wheel URLs only the index knows). For the layered assembly."""
    if plan.lock is not None:
        return tuple(read_pylock(plan.lock.decode(), "the plan's lock"))
    python, _ = resolution_python(plan, fallback_python)
    lines = [line for s in plan.requirement_sets for line in s.lines if line != REQUIRE_HASHES]
    return resolve(lines, python, build_args, staged_files(plan.files)).distributions


def staged_files(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The plan's files under STAGING/, by their path there (where `-c FILE` lines point)."""
    prefix = f"{STAGING}/"
    return {name[len(prefix) :]: data for name, data in files.items() if name.startswith(prefix)}


def resolution_python(plan: InstallPlan, fallback: str) -> tuple[str, list[str]]:
    """The Python to resolve for: the plan's, else the one a `python:X.Y` base names, else
    `fallback` (the python_version input), with a note saying so."""
    if plan.python:
        return plan.python, []
    named = _BASE_PYTHON.search(plan.base_image)
    if named:
        return named["version"], []
    return fallback, [
        f"resolve: the base image {plan.base_image} names no Python version; resolving for "
        f"Python {fallback} (the python_version input): set it to the base's Python"
    ]


def uv_env(build_args: Mapping[str, str], home: str = EMPTY_HOME) -> dict[str, str]:
    """The process environment for uv: `minimal_env` (no DOCKER_CONFIG, netrc, HOME files or
    other credential of the builder; HOME is `home`, an empty folder) plus the index settings
    as the install script sets them. `--no-build` keeps uv from running any package's code."""
    env = minimal_env(home=home)
    names = {
        "PIP_INDEX_URL": "UV_INDEX_URL",
        "PIP_EXTRA_INDEX_URL": "UV_EXTRA_INDEX_URL",
        "PIP_TRUSTED_HOST": "UV_INSECURE_HOST",
    }
    env.update({names[k]: v for k, v in build_args.items() if k in names and v})
    return env


def without_userinfo(text: str) -> str:
    """`http://user:token@host/...` -> `http://host/...`, everywhere in `text`."""
    return _USERINFO.sub(r"\g<scheme>", text)


def uv_binary() -> str:
    uv = find_uv()
    if not uv:
        raise StepError("resolve and locks need uv on the builder's machine: pip install uv")
    return uv

"""The environment resolved to exact wheels: a PEP 751 lock, and the one wheel per package that
the base's interpreter installs.

The lock is written by `uv pip compile --format pylock.toml`, run with the base's own
interpreter (`workspace.Workspace.resolve`), so markers and wheels are those of the base's
Python and platform. Of a package's wheels, the one chosen is the one pip and uv would take:
the first of the interpreter's supported tags (packaging.tags order) that a wheel carries.
A package with no such wheel (an sdist only, or no wheel for this platform) cannot be a layer.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from packaging import tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# manylinux tags older than PEP 600 and the glibc they stand for (PEP 513, 571, 599).
LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


@dataclass(frozen=True)
class Target:
    """The base's interpreter, as `workspace.PROBE` reports it."""

    python: str  # full version, e.g. 3.11.2
    machine: str  # e.g. x86_64, aarch64
    glibc: str  # e.g. 2.36; empty on a non-glibc base

    @property
    def python_minor(self) -> tuple[int, int]:
        major, minor = self.python.split(".")[:2]
        return int(major), int(minor)

    def supported_tags(self) -> list[tags.Tag]:
        """CPython tags, most preferred first (packaging.tags.sys_tags' order)."""
        platforms = self.platforms()
        version = self.python_minor
        interpreter = f"cp{version[0]}{version[1]}"
        return [
            *tags.cpython_tags(version, [interpreter], platforms),
            *tags.compatible_tags(version, interpreter, platforms),
        ]

    def platforms(self) -> list[str]:
        if not self.glibc:
            return []
        arch = self.machine
        major, minor = (int(part) for part in self.glibc.split(".")[:2])
        found = []
        for glibc_minor in range(minor, 4, -1):
            found.append(f"manylinux_{major}_{glibc_minor}_{arch}")
            legacy = LEGACY_MANYLINUX.get((major, glibc_minor))
            if legacy:
                found.append(f"{legacy}_{arch}")
        return [*found, f"linux_{arch}"]


@dataclass(frozen=True)
class Pin:
    """One resolved distribution and the wheel this base installs (None: none fits)."""

    name: str  # canonical (PEP 503)
    version: str
    wheel_url: str | None
    wheel_sha256: str | None
    wheel_size: int | None
    direct: bool  # named by the environment itself, not only pulled in

    @property
    def requirement(self) -> str:
        """The hash-pinned line that installs exactly this wheel."""
        return f"{self.name}=={self.version} --hash=sha256:{self.wheel_sha256}"


def without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def pick_wheel(wheels: list[dict], target: Target) -> dict | None:
    ranks = {tag: rank for rank, tag in enumerate(target.supported_tags())}
    best: tuple[int, dict] | None = None
    for wheel in wheels:
        filename = wheel.get("name") or wheel.get("url", "").rsplit("/", 1)[-1]
        try:
            wheel_tags = parse_wheel_filename(filename)[3]
        except InvalidWheelFilename:
            continue
        rank = min((ranks[tag] for tag in wheel_tags if tag in ranks), default=None)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, wheel)
    return best[1] if best else None


def pins_from_lock(text: str, target: Target, direct_names: set[str]) -> list[Pin]:
    """Every package of a pylock.toml, with the wheel `target` installs (PEP 751 fields)."""
    lock = tomllib.loads(text)
    direct = {canonicalize_name(name) for name in direct_names}
    pins = []
    for package in lock.get("packages", []):
        name = canonicalize_name(package["name"])
        wheel = pick_wheel(package.get("wheels", []), target)
        pins.append(
            Pin(
                name=name,
                version=str(package.get("version", "")),
                wheel_url=without_userinfo(wheel["url"]) if wheel and "url" in wheel else None,
                wheel_sha256=(wheel or {}).get("hashes", {}).get("sha256"),
                wheel_size=(wheel or {}).get("size"),
                direct=name in direct,
            )
        )
    return sorted(pins, key=lambda pin: pin.name)


def without_wheel(pins: list[Pin]) -> list[Pin]:
    return [pin for pin in pins if not pin.wheel_sha256]

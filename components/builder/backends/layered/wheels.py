"""The one wheel per resolved distribution that the base's interpreter installs.

The distributions come from the `resolve` machinery (`..resolution`: a PEP 751 lock, from
`uv pip compile` or the codeset's own lock). Of a distribution's wheels, the one chosen is the
one pip and uv would take: the first of the interpreter's supported tags (packaging.tags'
order) that a wheel carries. A distribution with no such wheel (an sdist only, or no wheel for
this platform) cannot be a layer. Markers are evaluated for the base (PEP 508).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from packaging import tags
from packaging.markers import Marker
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from ...planning.resolution import Distribution, DistributionFile

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

    @property
    def python_version(self) -> str:
        return "{}.{}".format(*self.python_minor)

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

    def marker_environment(self) -> dict[str, str]:
        return {
            "python_version": self.python_version,
            "python_full_version": self.python,
            "platform_machine": self.machine,
            "platform_system": "Linux",
            "sys_platform": "linux",
            "os_name": "posix",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "implementation_version": self.python,
        }


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


@cache
def tag_ranks(target: Target) -> dict[tags.Tag, int]:
    """{tag: rank} of `target.supported_tags()` (0 the most preferred); computed once per
    target (a glibc 2.36 base has thousands of tags, and every distribution asks)."""
    return {tag: rank for rank, tag in enumerate(target.supported_tags())}


def pick_wheel(wheels: tuple[DistributionFile, ...], target: Target) -> DistributionFile | None:
    ranks = tag_ranks(target)
    best: tuple[int, DistributionFile] | None = None
    for wheel in wheels:
        try:
            wheel_tags = parse_wheel_filename(wheel.name)[3]
        except InvalidWheelFilename:
            continue
        rank = min((ranks[tag] for tag in wheel_tags if tag in ranks), default=None)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, wheel)
    return best[1] if best else None


def pins_for(
    distributions: list[Distribution] | tuple[Distribution, ...],
    target: Target,
    direct_names: set[str],
) -> list[Pin]:
    """The distributions this base installs (markers evaluated), each with its wheel."""
    direct = {canonicalize_name(name) for name in direct_names}
    environment = target.marker_environment()
    pins = []
    for dist in distributions:
        if dist.marker and not Marker(dist.marker).evaluate(environment):
            continue
        wheel = pick_wheel(dist.wheels, target)
        pins.append(
            Pin(
                name=dist.name,
                version=dist.version,
                wheel_url=wheel.url if wheel else None,
                wheel_sha256=wheel.sha256 if wheel else None,
                wheel_size=None,
                direct=dist.name in direct,
            )
        )
    return sorted(pins, key=lambda pin: pin.name)


def without_wheel(pins: list[Pin]) -> list[Pin]:
    return [pin for pin in pins if not pin.wheel_sha256]

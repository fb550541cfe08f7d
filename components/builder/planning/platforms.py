"""The `platforms` input: the platforms one image index covers, e.g. `linux/amd64,linux/arm64`.

Each item is `os/architecture[/variant]`, as the OCI image index's `platform` object names it
(image-spec image-index.md: `os`, `architecture`, `variant`; the values Go's GOOS/GOARCH use).
Only `linux` images are built, for the architectures manylinux wheels exist for. Empty means
the base's own platform: one manifest, no index (the builder's behaviour without the input).
"""

from __future__ import annotations

import platform as host_platform
import re
from dataclasses import dataclass

from ...problems import StepError

# OCI architecture -> the machine name in manylinux tags and `uname -m` (PEP 600).
MACHINES = {"amd64": "x86_64", "arm64": "aarch64", "ppc64le": "ppc64le", "s390x": "s390x"}
ITEM = re.compile(r"^(?P<os>[a-z0-9]+)/(?P<architecture>[a-z0-9_]+)(?:/(?P<variant>[a-z0-9]+))?$")


@dataclass(frozen=True, order=True)
class Platform:
    """One platform: `os`, `architecture` (OCI names: amd64, arm64) and `variant` ("" or e.g.
    `v8`)."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)

    @property
    def machine(self) -> str:
        """`uname -m`'s name, as manylinux wheel tags and ELF loaders use it (x86_64, aarch64)."""
        return MACHINES[self.architecture]

    def matches(self, entry: dict) -> bool:
        """Whether an image index entry's `platform` object is this platform (a variant asked
        for must be the entry's; none asked for takes any)."""
        return (
            entry.get("os") == self.os
            and entry.get("architecture") == self.architecture
            and (not self.variant or entry.get("variant", "") == self.variant)
        )

    def as_json(self) -> dict[str, str]:
        found = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            found["variant"] = self.variant
        return found


def parse_platforms(text: str, what: str = "platforms") -> tuple[Platform, ...]:
    """`linux/amd64,linux/arm64` -> the platforms, sorted, each once; "" -> (). Raises
    StepError naming every item that is not `os/architecture[/variant]` for linux and a
    known architecture (amd64, arm64, ppc64le, s390x)."""
    found: set[Platform] = set()
    problems = []
    for item in (part.strip() for part in text.split(",")):
        if not item and not text.strip():
            continue
        match = ITEM.match(item)
        if not match:
            problems.append(
                f"{what}: `{item}` is not os/architecture[/variant]; write e.g. "
                "linux/amd64,linux/arm64"
            )
        elif match["os"] != "linux":
            problems.append(f"{what}: `{item}`: only linux images are built")
        elif match["architecture"] not in MACHINES:
            problems.append(
                f"{what}: `{item}`: architecture {match['architecture']} is not one of "
                f"{', '.join(MACHINES)}"
            )
        else:
            found.add(Platform(match["os"], match["architecture"], match["variant"] or ""))
    if problems:
        raise StepError(problems)
    return tuple(sorted(found))


def host() -> Platform:
    """This machine's platform (linux/<architecture>)."""
    machine = host_platform.machine()
    architecture = {v: k for k, v in MACHINES.items()}.get(machine, machine)
    return Platform("linux", architecture)


def others_than_host(platforms: tuple[Platform, ...]) -> list[Platform]:
    """The platforms that are not this machine's: an engine would need emulation for them."""
    here = host()
    return [p for p in platforms if (p.os, p.architecture) != (here.os, here.architecture)]


def refuse_emulation(platforms: tuple[Platform, ...], engine: str) -> None:
    """StepError when an engine that runs the base (buildah, podman, docker, kaniko, local) is
    asked for a platform other than this machine's: it would need emulation, and the builder
    uses none."""
    others = others_than_host(platforms)
    if others:
        raise StepError(
            f"platforms {','.join(map(str, others))}: the {engine} engine runs commands in the "
            f"base, so another CPU than this machine's ({host()}) would need emulation, which "
            "the builder does not use. Build with --engine none (the unprivileged builder "
            "writes every platform's layers itself, wheels only); nothing was pushed"
        )

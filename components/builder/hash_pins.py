"""The hashes the user pinned are the identity of what is installed.

A requirements file hashed on every line (`--hash=sha256:...`, pip's hash-checking mode) names
the only files the user accepts for each distribution. pip and uv check them when they install;
the per-package build must check them too when a layer is not installed but reused from the
registry (mounted): a layer's identity names the sha256 of the wheel it was made from
(`layered.units.identity`), so comparing that wheel hash with the pins is enough.

`pinned_hashes(plan)` reads the pins; `check_pins(pins, pinned)` raises StepError naming every
distribution whose wheel is not among its pinned hashes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..problems import StepError
from .plan import InstallPlan

HASH = re.compile(r"--hash[= ]sha256:([0-9a-fA-F]{64})")


def pinned_hashes(plan: InstallPlan) -> dict[str, set[str]]:
    """{canonical name: {sha256 hex, lower case}} of every requirement line with `--hash`
    options in the plan's requirement sets (other lines give nothing)."""
    pinned: dict[str, set[str]] = {}
    for requirement_set in plan.requirement_sets:
        for line in requirement_set.lines:
            hashes = HASH.findall(line)
            if not hashes or line.startswith("-"):
                continue
            try:
                name = Requirement(line.split(" --hash")[0].strip()).name
            except InvalidRequirement:
                continue
            pinned.setdefault(canonicalize_name(name), set()).update(h.lower() for h in hashes)
    return pinned


def check_pins(pins: Iterable, pinned: Mapping[str, set[str]]) -> None:
    """Raise StepError when a pin's wheel (`pin.name`, `pin.version`, `pin.wheel_sha256`) is
    not one of the hashes `pinned` holds for its name; names without pins are not checked."""
    problems = []
    for pin in pins:
        allowed = pinned.get(pin.name)
        if allowed is None or not pin.wheel_sha256:
            continue
        if pin.wheel_sha256.lower() not in allowed:
            problems.append(
                f"{pin.name} {pin.version}: the wheel a layer is made from has sha256 "
                f"{pin.wheel_sha256}, which is not a hash the requirements pin for it "
                f"({', '.join(sorted(allowed))}); fix the pin or the index. Nothing was pushed."
            )
    if problems:
        raise StepError(problems)

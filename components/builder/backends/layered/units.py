"""Which distributions go into which layer, in which order, and what names each layer.

A layer's identity is a SHA-256 over what decides its bytes: the distribution, its version and
wheel hash, the Python version (major.minor: the bytecode magic and the site-packages path), the
venv path, the bytecode flag, the builder's version, who installed it (the builder itself for a
pure-Python wheel, see `host_install`, else uv in the base) and the compressor. Two environments
that share a package version share its identity, so its layer, in the registry and on every
node.

At most `LAYER_LIMIT` layers in all, base included (overlay mounts get slow, and some runtimes
refuse, past ~125). When there are more distributions than room, the largest (by wheel size
where the index gives it; named requirements first where it does not) keep a layer of their
own, and the rest share `GROUPS` layers, each distribution in the group its name hashes to, so
a change to one small distribution rebuilds one small group (Nixery groups its packages the
same way below its limit). Below the limit, `grouping` decides: a layer for each distribution
the environment names and each binary wheel, a few shared ones for the rest.

Order, least likely to change first: what only other packages pull in, then what the
environment names itself (the packages a user bumps); each by name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

from mlflow_steps import __version__

from . import grouping
from .tarlayer import COMPRESSOR
from .wheels import Pin, Target

LAYER_LIMIT = 100
# The builder's own layers besides the distributions: the venv skeleton, the runtime module,
# the lock.
OWN_LAYERS = 3
GROUPS = 8


@dataclass(frozen=True)
class Unit:
    """One layer to be: its identity (hex) when installed in the base, the distributions it
    holds, and its identity when the builder installs them itself (None: it cannot)."""

    identity: str
    pins: tuple[Pin, ...]
    builder_identity: str | None = None

    def by_builder(self) -> Unit:
        """The same layer, installed by the builder itself."""
        assert self.builder_identity is not None
        return replace(self, identity=self.builder_identity)

    @property
    def label(self) -> str:
        if len(self.pins) == 1:
            return f"{self.pins[0].name} {self.pins[0].version}"
        return "group: " + ", ".join(f"{pin.name} {pin.version}" for pin in self.pins)

    @property
    def direct(self) -> bool:
        return any(pin.direct for pin in self.pins)


@dataclass(frozen=True)
class Context:
    """What, besides the distribution, decides a layer's bytes."""

    target: Target
    venv: str
    compile_bytecode: bool
    builder: str = __version__
    pure: frozenset[str] = frozenset()  # names the builder can install itself (host_install)
    # "" when an interpreter the builder trusts compiles the bytecode; "base <digest>" when the
    # base's own does (engineless.compiled_by): its layers are never reused under another base.
    compiled_by: str = ""


def identity(pin: Pin, context: Context, by_builder: bool = False) -> str:
    payload = {
        "distribution": pin.name,
        "version": pin.version,
        "wheel_sha256": pin.wheel_sha256,
        "python": "{}.{}".format(*context.target.python_minor),
        "venv": context.venv,
        "compile_bytecode": context.compile_bytecode,
        "builder": context.builder,
        "installed_by": "builder" if by_builder else "base",
        "compressor": COMPRESSOR,
    }
    if context.compiled_by:  # absent otherwise: every other layer keeps its identity
        payload["compiled_by"] = context.compiled_by
    return sha256_text(json.dumps(payload, sort_keys=True, separators=(",", ":")))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def room_for(base_layers: int, limit: int = LAYER_LIMIT) -> int:
    """How many distribution layers fit beside the base's and the builder's own."""
    return limit - base_layers - OWN_LAYERS


def plan_units(pins: list[Pin], context: Context, room: int) -> list[Unit]:
    """The distribution layers, in image order; at most `room` of them (room >= GROUPS + 1)."""
    if len(pins) <= room:  # fewer, larger layers for the node (`grouping`)
        units = [unit_of(members, context) for members in grouping.layer_members(pins)]
    else:
        by_value = sorted(pins, key=lambda p: (-(p.wheel_size or 0), not p.direct, p.name))
        alone, rest = by_value[: room - GROUPS], by_value[room - GROUPS :]
        units = [unit_of([pin], context) for pin in alone]
        buckets: dict[int, list[Pin]] = {}
        for pin in rest:
            buckets.setdefault(int(sha256_text(pin.name)[:8], 16) % GROUPS, []).append(pin)
        for members in buckets.values():
            units.append(unit_of(sorted(members, key=lambda p: p.name), context))
    return sorted(units, key=lambda unit: (unit.direct, unit.label))


def unit_of(pins: list[Pin], context: Context) -> Unit:
    def group_identity(by_builder: bool) -> str:
        if len(pins) == 1:
            return identity(pins[0], context, by_builder)
        ids = [identity(pin, context, by_builder) for pin in pins]
        return sha256_text("group:" + ",".join(ids))

    pure = all(pin.name in context.pure for pin in pins)
    return Unit(group_identity(False), tuple(pins), group_identity(True) if pure else None)

"""Which distributions go into which layer, in which order, and what names each layer.

A layer's identity is a SHA-256 over what decides its bytes: the distribution, its version and
wheel hash, the Python version (major.minor: the bytecode magic and the site-packages path),
the venv path, the bytecode flag and the builder's version. Two environments that share a
package version share its identity, so its layer, in the registry and on every node.

At most `LAYER_LIMIT` layers in all, base included (overlay mounts get slow, and some runtimes
refuse, past ~125). When there are more distributions than room, the largest (by wheel size
where the index gives it; named requirements first where it does not) keep a layer of their
own, and the rest share `GROUPS` layers, each distribution in the group its name hashes to, so
a change to one small distribution rebuilds one small group (Nixery groups its packages the
same way below its limit).

Order, least likely to change first: what only other packages pull in, then what the
environment names itself (the packages a user bumps); each by name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from mlflow_steps import __version__

from .wheels import Pin, Target

LAYER_LIMIT = 100
# The builder's own layers besides the distributions: the venv skeleton, the runtime module,
# the lock.
OWN_LAYERS = 3
GROUPS = 8


@dataclass(frozen=True)
class Unit:
    """One layer to be: its identity (hex) and the distributions it holds."""

    identity: str
    pins: tuple[Pin, ...]

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


def identity(pin: Pin, context: Context) -> str:
    payload = {
        "distribution": pin.name,
        "version": pin.version,
        "wheel_sha256": pin.wheel_sha256,
        "python": "{}.{}".format(*context.target.python_minor),
        "venv": context.venv,
        "compile_bytecode": context.compile_bytecode,
        "builder": context.builder,
    }
    return sha256_text(json.dumps(payload, sort_keys=True, separators=(",", ":")))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def room_for(base_layers: int, limit: int = LAYER_LIMIT) -> int:
    """How many distribution layers fit beside the base's and the builder's own."""
    return limit - base_layers - OWN_LAYERS


def plan_units(pins: list[Pin], context: Context, room: int) -> list[Unit]:
    """The distribution layers, in image order; at most `room` of them (room >= GROUPS + 1)."""
    if len(pins) <= room:
        units = [Unit(identity(pin, context), (pin,)) for pin in pins]
    else:
        by_value = sorted(pins, key=lambda p: (-(p.wheel_size or 0), not p.direct, p.name))
        alone, rest = by_value[: room - GROUPS], by_value[room - GROUPS :]
        units = [Unit(identity(pin, context), (pin,)) for pin in alone]
        buckets: dict[int, list[Pin]] = {}
        for pin in rest:
            buckets.setdefault(int(sha256_text(pin.name)[:8], 16) % GROUPS, []).append(pin)
        for members in buckets.values():
            members.sort(key=lambda p: p.name)
            ids = [identity(pin, context) for pin in members]
            units.append(Unit(sha256_text("group:" + ",".join(ids)), tuple(members)))
    return sorted(units, key=lambda unit: (unit.direct, unit.label))

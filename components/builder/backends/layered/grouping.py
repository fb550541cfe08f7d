"""Which distributions share a layer, for the node that pulls the image.

Every layer costs a node something of its own on a pull into an empty store, whatever its size
(containers/storage with overlay: a layer folder, an untar helper, a write of its layer list;
benchmarks/pull_and_start.py measured the wine-like stack's 57 layers pulling in about 1.8x the
time of the `single` image's 2, on overlay). So below the layer limit (`units.plan_units`),
distributions are grouped, the way apko groups by origin and Nixery by popularity:

- a distribution the environment names itself (`Pin.direct`: what a user bumps) keeps a layer
  of its own, so a bump rebuilds that layer only;
- the pure-Python wheels that the environment only pulls in share `SHARED_LAYERS` layers, each
  distribution in the layer its name hashes to (SHA-256: the same group in every environment
  and build, deterministic; a new or bumped one changes its group only);
- the binary wheels (any tag other than `none-any`: numpy, scipy, cryptography) it only pulls
  in share `BINARY_LAYERS` layers the same way, apart from the pure ones (a pure group can be
  written by the builder without the base, `host_install`; a binary one is installed in the
  base). `BINARY_LAYERS = 0`: a layer for each, as before (57 -> 20 layers for the wine-like
  stack; with 4 pure and 4 binary groups 14, with 2 and 2, the default, 11). The index gives
  no wheel sizes here (pypiserver's simple API, and the lock has none), so the groups go by
  name, not by size.

A group's identity is that of its members (`units.unit_of`), so two environments with the same
members in a group share that layer too.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from .wheels import Pin

SHARED_LAYERS = 2
# Measured per extra layer on a pull into an empty overlay store (buildah 1.28): 0.07-0.09 s;
# 2:2 (11 layers for the wine-like stack) pulled in 0.92-0.94x the `single` image's time on
# buildah and containerd, 4:4 (14 layers) in 0.99-1.06x (benchmarks/pull_and_start.py,
# docs/layering.md).
BINARY_LAYERS = 2


def wheel_tags(pin: Pin) -> frozenset[Tag] | None:
    """The tags of the pin's wheel, from its file name (PEP 427); None: not a wheel's name."""
    name = unquote(PurePosixPath(urlsplit(pin.wheel_url or "").path).name)
    try:
        return parse_wheel_filename(name)[3]
    except InvalidWheelFilename:
        return None


def is_binary(pin: Pin) -> bool:
    """Whether the pin's wheel is anything but `none-any` (an unreadable wheel name counts as
    binary; `layer_members` gives it a layer of its own, as before grouping)."""
    tags = wheel_tags(pin)
    return tags is None or not all(t.abi == "none" and t.platform == "any" for t in tags)


def shared_layer(name: str, layers: int = SHARED_LAYERS) -> int:
    """The shared layer (0 .. layers - 1) a distribution named `name` (PEP 503) goes into."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % layers


def layer_members(
    pins: list[Pin], layers: int | None = None, binary_layers: int | None = None
) -> list[list[Pin]]:
    """`pins` cut into layers: [pin] for each distribution with a layer of its own, then the
    non-empty shared layers (the pure ones', then the binary ones'), each sorted by name. Every
    pin is in exactly one list. `layers` and `binary_layers` default to `SHARED_LAYERS` and
    `BINARY_LAYERS`, read at call time; `binary_layers` 0 gives each binary wheel a layer."""
    layers = SHARED_LAYERS if layers is None else layers
    binary_layers = BINARY_LAYERS if binary_layers is None else binary_layers
    own: list[list[Pin]] = []
    shared: dict[tuple[bool, int], list[Pin]] = {}
    for pin in pins:
        binary = is_binary(pin)
        if pin.direct or (binary and (binary_layers < 1 or wheel_tags(pin) is None)):
            own.append([pin])
        else:
            count = binary_layers if binary else layers
            shared.setdefault((binary, shared_layer(pin.name, count)), []).append(pin)
    groups = [sorted(members, key=lambda p: p.name) for _, members in sorted(shared.items())]
    return own + groups

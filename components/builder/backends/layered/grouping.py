"""Which distributions share a layer, for the node that pulls the image.

Every layer costs a node something of its own on a pull into an empty store, whatever its size
(containers/storage with overlay: a layer folder, an untar helper, a write of its layer list;
benchmarks/pull_and_start.py measured the wine-like stack's 57 layers pulling in about 1.8x the
time of the `single` image's 2, on overlay). So below the layer limit (`units.plan_units`),
distributions are grouped, the way apko groups by origin and Nixery by popularity:

- a distribution the environment names itself (`Pin.direct`: what a user bumps) keeps a layer
  of its own, so a bump rebuilds that layer only;
- so does a binary wheel (any tag other than `none-any`: numpy, scipy, cryptography), the large
  compiled distributions, shared between environments by their own identity;
- the rest, pure-Python wheels that the environment only pulls in, share `SHARED_LAYERS`
  layers, each distribution in the layer its name hashes to (SHA-256: the same group in every
  environment and build, deterministic; a new or bumped one changes its group only).

A group's identity is that of its members (`units.unit_of`), so two environments with the same
members in a group share that layer too.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from .wheels import Pin

SHARED_LAYERS = 4


def is_binary(pin: Pin) -> bool:
    """Whether the pin's wheel is anything but `none-any` (an unreadable wheel name counts as
    binary: it keeps a layer of its own, as before grouping)."""
    name = unquote(PurePosixPath(urlsplit(pin.wheel_url or "").path).name)
    try:
        tags = parse_wheel_filename(name)[3]
    except InvalidWheelFilename:
        return True
    return not all(tag.abi == "none" and tag.platform == "any" for tag in tags)


def shared_layer(name: str, layers: int = SHARED_LAYERS) -> int:
    """The shared layer (0 .. layers - 1) a distribution named `name` (PEP 503) goes into."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % layers


def layer_members(pins: list[Pin], layers: int = SHARED_LAYERS) -> list[list[Pin]]:
    """`pins` cut into layers: [pin] for each distribution with a layer of its own, then the
    non-empty shared layers, each sorted by name. Every pin is in exactly one list."""
    own = [[pin] for pin in pins if pin.direct or is_binary(pin)]
    shared: dict[int, list[Pin]] = {}
    for pin in pins:
        if not (pin.direct or is_binary(pin)):
            shared.setdefault(shared_layer(pin.name, layers), []).append(pin)
    groups = [sorted(members, key=lambda p: p.name) for _, members in sorted(shared.items())]
    return own + groups

"""Which distributions share a layer below the limit: named ones alone, the pure-Python and the
binary ones pulled in shared by name hash, each kind apart (fewer layers for the node that pulls
the image)."""

from __future__ import annotations

import dataclasses
import random

from mlflow_steps.components.builder.backends.layered import grouping
from mlflow_steps.components.builder.backends.layered.grouping import (
    BINARY_LAYERS,
    SHARED_LAYERS,
    is_binary,
    layer_members,
    shared_layer,
)
from mlflow_steps.components.builder.backends.layered.units import Context, plan_units, room_for
from mlflow_steps.components.builder.backends.layered.wheels import Pin, Target

TARGET = Target(python="3.11.2", machine="x86_64", glibc="2.36")
CONTEXT = Context(TARGET, "/opt/mlflow-env", True, builder="1.0")
PURE = "py3-none-any"
BINARY = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
# The wine-like stack's shape: what it names, its binary and its pure-Python dependencies.
DIRECT = {
    "scikit-learn": BINARY,
    "pandas": BINARY,
    "mlflow-skinny": PURE,
    "six": "py2.py3-none-any",
}
BINARIES = ["numpy", "scipy", "cffi", "cryptography", "pydantic-core", "pyyaml", "protobuf"]
PURES = ["annotated-types", "anyio", "cachetools", "certifi", "click", "cloudpickle",
         "databricks-sdk", "fastapi", "gitdb", "gitpython", "google-auth", "h11", "idna",
         "importlib-metadata", "joblib", "narwhals", "opentelemetry-api", "opentelemetry-sdk",
         "packaging", "pyasn1", "pyasn1-modules", "pycparser", "pydantic", "python-dateutil",
         "python-dotenv", "requests", "smmap", "sqlparse", "starlette", "threadpoolctl",
         "typing-extensions", "tzdata", "urllib3", "uvicorn", "zipp"]  # fmt: skip


def pin(name: str, tags: str, version: str = "1.0", direct: bool = False) -> Pin:
    wheel = f"{name.replace('-', '_')}-{version}-{tags}.whl"
    sha = (name + version).encode().hex()[:64].ljust(64, "0")
    return Pin(name, version, f"http://index/files/{wheel}", sha, None, direct)


def stack() -> list[Pin]:
    return sorted(
        [pin(name, tags, direct=True) for name, tags in DIRECT.items()]
        + [pin(name, BINARY) for name in BINARIES]
        + [pin(name, PURE) for name in PURES],
        key=lambda p: p.name,
    )


def test_a_wheel_is_binary_unless_every_tag_is_none_any():
    assert not is_binary(pin("six", "py2.py3-none-any"))
    assert is_binary(pin("numpy", BINARY))
    assert is_binary(pin("protobuf", "cp39-abi3-manylinux2014_x86_64"))
    assert is_binary(Pin("odd", "1.0", "http://i/odd.whl", "0" * 64, None, False))  # unreadable


def test_named_distributions_keep_a_layer_and_the_rest_share_a_few_of_their_kind():
    pins = stack()
    members = layer_members(pins)
    alone = {group[0].name for group in members if len(group) == 1}
    assert set(DIRECT) <= alone
    named = [group for group in members if group[0].name in DIRECT]
    assert all(len(group) == 1 for group in named)
    pure = [group for group in members if any(p.name in PURES for p in group)]
    binary = [group for group in members if any(p.name in BINARIES for p in group)]
    assert 1 <= len(pure) <= SHARED_LAYERS and 1 <= len(binary) <= BINARY_LAYERS
    # Never mixed: a pure group stays one the builder can write without the base.
    assert all(p.name in PURES for group in pure for p in group)
    assert all(p.name in BINARIES for group in binary for p in group)
    assert sorted(p.name for group in members for p in group) == sorted(p.name for p in pins)
    assert len(members) == len(DIRECT) + len(pure) + len(binary)  # at most 12, not 46
    assert any(len(group) > 1 for group in binary)  # 7 binaries in at most 4 layers


def test_a_wheel_whose_name_cannot_be_read_keeps_a_layer_of_its_own():
    odd = [Pin(f"odd{n}", "1.0", f"http://i/odd{n}.whl", "0" * 64, None, False) for n in range(9)]
    assert all(len(group) == 1 for group in layer_members([*stack(), *odd]) if group[0] in odd)
    assert len(layer_members([*stack(), *odd])) == len(layer_members(stack())) + 9


def test_binary_layers_zero_gives_each_binary_wheel_a_layer_as_before():
    members = layer_members(stack(), binary_layers=0)
    alone = {group[0].name for group in members if len(group) == 1}
    assert set(DIRECT) | set(BINARIES) <= alone
    assert all(len(group) == 1 for group in members if group[0].name in BINARIES)


def test_the_module_settings_are_read_at_call_time(monkeypatch):
    """What benchmarks/pull_and_start.py --grouping sets before the build."""
    monkeypatch.setattr(grouping, "SHARED_LAYERS", 1)
    monkeypatch.setattr(grouping, "BINARY_LAYERS", 1)
    members = layer_members(stack())
    assert len(members) == len(DIRECT) + 2


def test_the_grouping_is_the_same_whatever_the_order_of_the_pins():
    pins = stack()
    shuffled = pins[:]
    random.Random(7).shuffle(shuffled)
    first = [u.identity for u in plan_units(pins, CONTEXT, room_for(1))]
    assert [u.identity for u in plan_units(shuffled, CONTEXT, room_for(1))] == first
    assert shared_layer("idna") == shared_layer("idna") < SHARED_LAYERS


def test_bumping_a_named_distribution_rebuilds_its_layer_only():
    before = {u.identity for u in plan_units(stack(), CONTEXT, room_for(1))}
    bumped = [dataclasses.replace(p, version="2.0") if p.name == "six" else p for p in stack()]
    after = plan_units(bumped, CONTEXT, room_for(1))
    changed = [u for u in after if u.identity not in before]
    assert [u.label for u in changed] == ["six 2.0"]


def test_bumping_or_adding_a_pure_dependency_rebuilds_one_shared_layer():
    before = {u.identity for u in plan_units(stack(), CONTEXT, room_for(1))}
    bumped = [dataclasses.replace(p, version="2.0") if p.name == "idna" else p for p in stack()]
    changed = [u for u in plan_units(bumped, CONTEXT, room_for(1)) if u.identity not in before]
    assert len(changed) == 1 and "idna 2.0" in changed[0].label
    added = plan_units([*stack(), pin("attrs", PURE)], CONTEXT, room_for(1))
    assert len([u for u in added if u.identity not in before]) == 1


def test_bumping_a_binary_dependency_rebuilds_its_binary_group_only():
    before = {u.identity for u in plan_units(stack(), CONTEXT, room_for(1))}
    bumped = [dataclasses.replace(p, version="2.0") if p.name == "numpy" else p for p in stack()]
    changed = [u for u in plan_units(bumped, CONTEXT, room_for(1)) if u.identity not in before]
    assert len(changed) == 1 and "numpy 2.0" in changed[0].label
    assert all(p.name in BINARIES for p in changed[0].pins)


def test_a_shared_layer_is_shared_between_environments_with_the_same_members():
    one = {u.label: u.identity for u in plan_units(stack(), CONTEXT, room_for(1))}
    other = [*stack(), pin("zzz-extra-binary", BINARY)]
    two = {u.label: u.identity for u in plan_units(other, CONTEXT, room_for(1))}
    groups = [label for label in one if label.startswith("group: ")]
    assert groups and all(one[label] == two[label] for label in groups)


def test_a_shared_layer_of_pure_wheels_can_be_installed_by_the_builder():
    pure = frozenset(p.name for p in stack() if not is_binary(p))
    context = dataclasses.replace(CONTEXT, pure=pure)
    groups = [u for u in plan_units(stack(), context, room_for(1)) if len(u.pins) > 1]
    pure_groups = [u for u in groups if all(p.name in pure for p in u.pins)]
    assert pure_groups and all(u.builder_identity is not None for u in pure_groups)
    # A binary group is installed in the base: the builder has no identity for it.
    binary_groups = [u for u in groups if u not in pure_groups]
    assert binary_groups and all(u.builder_identity is None for u in binary_groups)

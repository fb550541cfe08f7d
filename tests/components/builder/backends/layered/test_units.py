"""Which distribution goes into which layer: identities shared between environments, the
layer limit kept for a large environment, least likely to change first."""

from __future__ import annotations

import dataclasses

from mlflow_steps.components.builder.backends.layered.units import (
    GROUPS,
    LAYER_LIMIT,
    OWN_LAYERS,
    Context,
    identity,
    plan_units,
    room_for,
)
from mlflow_steps.components.builder.backends.layered.wheels import Pin, Target

TARGET = Target(python="3.11.2", machine="x86_64", glibc="2.36")
CONTEXT = Context(TARGET, "/opt/mlflow-env", True, builder="1.0")


def pin(name: str, version: str = "1.0", size: int | None = None, direct: bool = False) -> Pin:
    return Pin(
        name, version, f"http://i/{name}.whl", f"{name}{version}".ljust(64, "0"), size, direct
    )


def synthetic(count: int) -> list[Pin]:
    """`count` distributions, a few large, most small (sizes as an index would give them)."""
    return [
        pin(f"dist{n:03}", size=(50_000_000 if n % 25 == 0 else 10_000 + n)) for n in range(count)
    ]


def test_a_package_version_has_one_identity_in_every_environment():
    numpy = pin("numpy", "2.4.6", direct=True)
    first = {u.pins[0].name: u.identity for u in plan_units([numpy, pin("six")], CONTEXT, 50)}
    second = {u.pins[0].name: u.identity for u in plan_units([numpy, pin("idna")], CONTEXT, 50)}
    assert first["numpy"] == second["numpy"]
    assert first["six"] != second["idna"]


def test_identity_changes_with_what_decides_the_bytes():
    six = pin("six")
    same = identity(six, CONTEXT)
    assert identity(six, dataclasses.replace(CONTEXT)) == same
    assert identity(dataclasses.replace(six, direct=True), CONTEXT) == same  # not in the bytes
    assert identity(dataclasses.replace(six, version="1.1"), CONTEXT) != same
    assert identity(dataclasses.replace(six, wheel_sha256="f" * 64), CONTEXT) != same
    changed = [
        dataclasses.replace(CONTEXT, target=Target("3.12.1", "x86_64", "2.36")),
        dataclasses.replace(CONTEXT, venv="/opt/other"),
        dataclasses.replace(CONTEXT, compile_bytecode=False),
        dataclasses.replace(CONTEXT, builder="1.1"),
    ]
    assert all(identity(six, context) != same for context in changed)
    # A patch release of the base's Python keeps the layers (same bytecode magic and paths).
    patched = dataclasses.replace(CONTEXT, target=Target("3.11.9", "x86_64", "2.36"))
    assert identity(six, patched) == same


def test_bytecode_a_base_compiled_is_never_reused_under_another_base():
    """When the base's own interpreter compiles (the builder has none of its minor version),
    the layer names that base: a hostile base's bytecode stays in its own images."""
    six = pin("six")
    trusted = identity(six, CONTEXT)
    by_one = identity(six, dataclasses.replace(CONTEXT, compiled_by="base sha256:" + "1" * 64))
    by_other = identity(six, dataclasses.replace(CONTEXT, compiled_by="base sha256:" + "2" * 64))
    assert len({trusted, by_one, by_other}) == 3


def test_150_distributions_stay_within_the_layer_limit_with_the_base():
    base_layers = 5
    pins = synthetic(150)
    units = plan_units(pins, CONTEXT, room_for(base_layers))
    assert base_layers + OWN_LAYERS + len(units) <= LAYER_LIMIT
    held = sorted(p.name for u in units for p in u.pins)
    assert held == sorted(p.name for p in pins)  # each distribution exactly once
    alone = {u.pins[0].name for u in units if len(u.pins) == 1}
    assert {p.name for p in pins if p.wheel_size == 50_000_000} <= alone  # large ones alone
    assert sum(len(u.pins) > 1 for u in units) <= GROUPS


def test_bumping_one_small_distribution_rebuilds_one_group_only():
    pins = synthetic(150)
    room = room_for(1)
    before = {u.identity for u in plan_units(pins, CONTEXT, room)}
    bumped = [dataclasses.replace(p, version="2.0") if p.name == "dist077" else p for p in pins]
    after = {u.identity for u in plan_units(bumped, CONTEXT, room)}
    assert len(after - before) == 1


def test_room_is_one_layer_each_when_it_fits():
    units = plan_units(synthetic(40), CONTEXT, room_for(1))
    assert len(units) == 40 and all(len(u.pins) == 1 for u in units)


def test_what_the_environment_names_comes_after_what_it_pulls_in():
    pins = [pin("zope"), pin("numpy"), pin("pandas", direct=True), pin("aaa", direct=True)]
    order = [u.pins[0].name for u in plan_units(pins, CONTEXT, 50)]
    assert order == ["numpy", "zope", "aaa", "pandas"]

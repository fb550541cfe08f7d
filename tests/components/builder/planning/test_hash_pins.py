"""What the per-package path compares with the user's hash pins (`hash_pins`), on plans
shaped as the environment kinds make them. The end-to-end proof is layered/test_hash_pins_e2e.py."""

from __future__ import annotations

import pytest

from mlflow_steps.components.builder.backends.layered.wheels import Pin
from mlflow_steps.components.builder.planning.hash_pins import check_pins, pinned_hashes
from mlflow_steps.components.builder.planning.plan import InstallPlan, RequirementSet
from mlflow_steps.components.problems import StepError

WHEEL = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"
SDIST = "1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926"


def plan(*lines: str) -> InstallPlan:
    return InstallPlan(kind="pip", installer="venv", base_image="python:3.11",
                       requirement_sets=(RequirementSet("requirements.txt", lines),))  # fmt: skip


def pin(name: str, sha256: str) -> Pin:
    return Pin(name, "1.16.0", f"http://i/{name}.whl", sha256, 1, True)


def test_pins_are_read_per_canonical_name():
    line = f"Six==1.16.0 --hash=sha256:{SDIST} --hash=sha256:{WHEEL}"
    found = pinned_hashes(plan("--require-hashes", line, "click"))
    assert found == {"six": {SDIST, WHEEL}}


def test_a_wheel_among_the_pins_passes_and_unpinned_names_are_not_checked():
    check_pins([pin("six", WHEEL), pin("click", "0" * 64)], {"six": {SDIST, WHEEL}})


def test_a_wheel_outside_the_pins_fails_naming_the_package():
    flipped = WHEEL[:-1] + "5"
    with pytest.raises(StepError) as caught:
        check_pins([pin("six", WHEEL)], {"six": {SDIST, flipped}})
    message = str(caught.value)
    assert "six 1.16.0" in message and WHEEL in message and "Nothing was pushed" in message

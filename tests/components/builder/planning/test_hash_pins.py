"""What the per-package path compares with the user's hash pins (`hash_pins`), on plans
shaped as the environment kinds make them. The end-to-end proof is layered/test_hash_pins_e2e.py."""

from __future__ import annotations

from collections import namedtuple

import pytest

from mlflow_steps.components.builder.backends.layered.wheels import Pin
from mlflow_steps.components.builder.planning.hash_pins import (
    check_pins,
    check_resolution,
    pinned_hashes,
)
from mlflow_steps.components.builder.planning.plan import STAGING, InstallPlan, RequirementSet
from mlflow_steps.components.builder.planning.resolution import Distribution, DistributionFile
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


def _plan(lines: tuple[str, ...], constraints: str = "") -> InstallPlan:
    files = {f"{STAGING}/constraints.txt": constraints.encode()} if constraints else {}
    return InstallPlan(kind="pip", installer="venv", base_image="python:3.11",
                       requirement_sets=(RequirementSet("requirements.txt", lines),),
                       files=files)  # fmt: skip


A, B = "a" * 64, "b" * 64


def test_constraint_hashes_and_other_algorithms_are_pins_too():
    """pip reads `--hash` in a `-c` file, and accepts sha384/sha512: a pin given either way
    once checked nothing (found by this round's attack review). Constraint hashes are read
    (continuation lines joined); a name pinned with sha512 only cannot be compared with a
    wheel's sha256 and is refused, not skipped."""
    constraints = f"six==1.0 \\\n    --hash=sha256:{A}\nidna==3.0 --hash=sha512:{'c' * 128}\n"
    plan = _plan(("six==1.0", "-c constraints.txt"), constraints)
    assert pinned_hashes(plan) == {"six": {A}, "idna": set()}
    Pinned = namedtuple("Pinned", "name version wheel_sha256")
    check_pins([Pinned("six", "1.0", A)], pinned_hashes(plan))
    with pytest.raises(StepError, match="idna: pinned with sha384/sha512 hashes only"):
        check_pins([Pinned("idna", "3.0", B)], pinned_hashes(plan))


def test_a_resolution_holds_only_files_the_user_pinned():
    """`resolve` and `platforms` replace a hashed file by the builder's own lock: the user's
    hashes must still hold over it (what it pulls in pinned, every file of a pinned version
    one of the pinned hashes), else nothing is built."""
    plan = _plan((f"six==1.0 --hash=sha256:{A}",))

    def dist(name: str, *hashes: str) -> Distribution:
        files = tuple(DistributionFile(f"{name}-{h[:4]}.whl", "", h) for h in hashes)
        return Distribution(name, "1.0", "", files)

    check_resolution(plan, [dist("six", A)])
    with pytest.raises(StepError, match=r"six 1\.0: the index offers six-bbbb\.whl"):
        check_resolution(plan, [dist("six", A, B)])
    with pytest.raises(StepError, match=r"missing from some requirements\. idna 1\.0"):
        check_resolution(plan, [dist("six", A), dist("idna", B)])
    check_resolution(_plan(("six==1.0",)), [dist("six", B), dist("idna", B)])  # no hash mode

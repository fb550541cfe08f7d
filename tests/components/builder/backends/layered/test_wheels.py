"""The wheel a base installs, of a PEP 751 lock's distributions: the best-ranked of its
supported tags, none when only an sdist (or another platform's wheel) exists; markers
evaluated for the base."""

# ruff: noqa: E501 (a lock's lines as uv writes them)
from __future__ import annotations

from mlflow_steps.components.builder.backends.layered.wheels import Target, pins_for, without_wheel
from mlflow_steps.components.builder.planning.resolution import read_pylock

TARGET = Target(python="3.11.2", machine="x86_64", glibc="2.36")
LOCK = """
lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "NumPy"
version = "2.4.6"
wheels = [
  { url = "http://h/numpy-2.4.6-cp311-cp311-musllinux_1_2_x86_64.whl", hashes = { sha256 = "aa" } },
  { url = "http://h/numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", hashes = { sha256 = "bb" } },
  { url = "http://h/numpy-2.4.6-cp312-cp312-manylinux_2_27_x86_64.whl", hashes = { sha256 = "cc" } },
  { url = "http://h/numpy-2.4.6-cp311-cp311-manylinux_2_39_x86_64.whl", hashes = { sha256 = "dd" } },
]

[[packages]]
name = "six"
version = "1.17.0"
wheels = [{ url = "http://h/six-1.17.0-py2.py3-none-any.whl", hashes = { sha256 = "ee" } }]

[[packages]]
name = "colorama"
version = "0.4.6"
marker = "sys_platform == 'win32'"
wheels = [{ url = "http://h/colorama-0.4.6-py2.py3-none-any.whl", hashes = { sha256 = "11" } }]

[[packages]]
name = "tinypkg"
version = "1.0"
sdist = { url = "http://h/tinypkg-1.0.tar.gz", hashes = { sha256 = "ff" } }

[[packages]]
name = "armonly"
version = "1.0"
wheels = [{ url = "http://h/armonly-1.0-cp311-cp311-manylinux_2_17_aarch64.whl", hashes = { sha256 = "00" } }]
"""


def pins_from_lock(text, target, direct):
    return pins_for(read_pylock(text, "test lock"), target, direct)


def test_the_wheel_this_base_installs_is_picked():
    pins = {pin.name: pin for pin in pins_from_lock(LOCK, TARGET, {"numpy"})}
    numpy = pins["numpy"]
    assert (numpy.wheel_sha256, numpy.direct) == ("bb", True)
    assert pins["six"].wheel_sha256 == "ee" and not pins["six"].direct
    assert "colorama" not in pins  # its marker is false on Linux
    assert numpy.requirement == "numpy==2.4.6 --hash=sha256:bb"


def test_sdist_only_and_other_platforms_have_no_wheel():
    pins = pins_from_lock(LOCK, TARGET, set())
    assert [pin.name for pin in without_wheel(pins)] == ["armonly", "tinypkg"]
    on_arm = pins_from_lock(LOCK, Target("3.11.2", "aarch64", "2.36"), set())
    assert "armonly" not in [pin.name for pin in without_wheel(on_arm)]


def test_legacy_manylinux_tags_count():
    target = Target(python="3.11.2", machine="x86_64", glibc="2.17")
    lock = LOCK.replace("manylinux_2_27_x86_64.manylinux_2_28_x86_64", "manylinux2014_x86_64")
    numpy = {pin.name: pin for pin in pins_from_lock(lock, target, set())}["numpy"]
    assert numpy.wheel_sha256 == "bb"

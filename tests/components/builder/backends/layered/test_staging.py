"""Where the engine-less build stages its tree: this machine's real /dev/shm, /proc and cgroup
files are read (nothing mocked); the choice of folder follows the room they give."""

from __future__ import annotations

import zipfile
from pathlib import Path

from mlflow_steps.components.builder.backends.layered import staging
from tests.support.require import require


def test_the_unpacked_size_is_the_sum_of_the_wheels_entries(tmp_path):
    wheel = tmp_path / "a-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/__init__.py", b"x = 1\n" * 1000)
        archive.writestr("a-1.0.dist-info/RECORD", b"")
    assert wheel.stat().st_size < 6000
    assert staging.unpacked_size([wheel, wheel]) == 2 * 6000


def shm_usable() -> bool:
    return staging.is_tmpfs(staging.SHM) and staging.memory_room() > 64 << 20


def test_a_tree_that_fits_goes_to_shared_memory_and_one_that_does_not_to_the_disk(
    monkeypatch,
):
    require(shm_usable(), "needs a tmpfs at /dev/shm with 64 MiB to spare")
    monkeypatch.delenv("TMPDIR", raising=False)
    assert staging.staging_folder(1 << 20) == "/dev/shm"
    with staging.staged(1 << 20, "mlflow-steps-test-") as folder:
        assert Path(folder).parent == staging.SHM
    assert not Path(folder).exists()
    room = staging.memory_room()
    assert staging.staging_folder(room) is None  # more than half of the room
    assert staging.staging_folder(int(0.9 * room / (2 * staging.GROWTH))) == "/dev/shm"


def test_an_explicit_tmpdir_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert staging.staging_folder(1) is None


def test_the_room_counts_the_cgroups_limit(monkeypatch, tmp_path):
    """A pod's memory limit bounds the room (tmpfs pages count against it): with a cgroup v2
    folder whose `memory.max` leaves 5 MiB, the room is 5 MiB; with `max`, the machine's
    figures hold. The cgroup folder is written here: this machine's own has no limit."""
    (tmp_path / "memory.max").write_text(f"{64 << 20}\n")
    (tmp_path / "memory.current").write_text(f"{59 << 20}\n")
    monkeypatch.setattr(staging, "cgroup_folder", lambda: tmp_path)
    assert staging.memory_room() == 5 << 20
    (tmp_path / "memory.max").write_text("max\n")
    assert staging.memory_room() > 5 << 20

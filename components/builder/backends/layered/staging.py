"""Where the engine-less build stages the files it installs: in memory when there is room.

The staged tree is written once, read back twice (the bytecode compiler, the layer writer)
and removed: thousands of small files (the sklearn stack: 9,186 files unpacked, 4,359 `.pyc`
written) that never need to reach a disk. On a disk other jobs keep busy, creating,
reading and removing them cost most of the build (ext4 here: 0.8 ms a file created, 6.5
system CPU s to unpack the stack against 0.5 s on tmpfs). So the tree goes to `/dev/shm`
(a tmpfs, POSIX shared memory) when it has room, else to `tempfile`'s folder.

Room: the estimate (`needed`) is at most half of the least of what `/dev/shm` has free,
what the kernel says is available (`MemAvailable`, proc(5)), and what the process's
cgroup v2 may still use (`memory.max - memory.current`: tmpfs pages are charged to it, so a
pod's memory limit counts). An explicit `TMPDIR` is the user's choice and always wins.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

SHM = Path("/dev/shm")
CGROUP = Path("/sys/fs/cgroup")
# The staged tree against the wheels' unpacked size: the files, their bytecode (about a
# quarter more here), the layers' gzip files beside them.
GROWTH = 1.6


def unpacked_size(wheels: Iterable[Path]) -> int:
    """Bytes the wheels hold once unpacked (their zip entries' sizes)."""
    total = 0
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            total += sum(info.file_size for info in archive.infolist())
    return total


def is_tmpfs(folder: Path) -> bool:
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return False
    found = ""  # the last mount on the folder is the one seen there
    for line in mounts:
        fields = line.split()
        if len(fields) > 2 and fields[1] == str(folder):
            found = fields[2]
    return found == "tmpfs"


def memory_room(folder: Path = SHM) -> int:
    """Bytes that may go to `folder` (a tmpfs): the least of its free space, MemAvailable and
    the cgroup's remaining memory (0 when one cannot be read)."""
    try:
        found = os.statvfs(folder)
        room = [found.f_bavail * found.f_frsize]
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                room.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        return 0
    own = cgroup_folder()
    if own is not None:
        try:
            limit = (own / "memory.max").read_text().strip()
            if limit != "max":
                room.append(int(limit) - int((own / "memory.current").read_text()))
        except (OSError, ValueError):
            pass  # no memory controller there: the machine's figures hold
    return max(0, min(room)) if len(room) > 1 else 0


def cgroup_folder() -> Path | None:
    """This process's cgroup v2 folder (`0::/path` in /proc/self/cgroup), or None."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return CGROUP / line[3:].strip().lstrip("/")
    except OSError:
        pass
    return None


def staging_folder(needed: int) -> str | None:
    """The folder to stage `needed` bytes of wheels (unpacked) in: `/dev/shm` when it is a
    writable tmpfs with room for `GROWTH` times that, twice over; None (tempfile's own
    folder) otherwise, or when `TMPDIR` is set."""
    if os.environ.get("TMPDIR") or not SHM.is_dir() or not os.access(SHM, os.W_OK | os.X_OK):
        return None
    if not is_tmpfs(SHM) or 2 * GROWTH * needed > memory_room(SHM):
        return None
    return str(SHM)


def staged(needed: int, prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A temporary folder for the staged tree (see `staging_folder`)."""
    return tempfile.TemporaryDirectory(prefix=prefix, dir=staging_folder(needed))

"""Reading a file the codeset provides: regular files only, and at most a size limit.

The codeset is untrusted: a FIFO blocks the reader forever, a device file reads a device, and
a huge file exhausts the builder's memory. Every file the builder reads from a codeset
(MLproject, conda.yaml, python_env.yaml, requirement files and their includes, pyproject.toml,
uv.lock, pylock.toml, .python-version, shipped path requirements) is opened here: `stat`
first (no open of a FIFO or device), opened without blocking, checked again on the open file,
and read up to its limit. Errors are `StepError`s naming the file as written.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ...problems import StepError

KIB, MIB = 1024, 1024 * 1024
SMALL_FILE = 64 * KIB  # .python-version
TEXT_FILE = 4 * MIB  # MLproject, conda.yaml, python_env.yaml, requirement files
LOCK_FILE = 64 * MIB  # uv.lock, pylock.toml, pyproject.toml
SHIPPED_FILE = 1024 * MIB  # a path requirement (a wheel, an sdist) copied into the build


def kind_of(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def regular_problem(path: Path, shown: str) -> str:
    """Why `path` (symlinks followed) is not a regular file the builder may read ("" if it is)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"{shown}: cannot be read ({exc.__class__.__name__})"
    if stat.S_ISREG(mode):
        return ""
    return f"{shown}: is {kind_of(mode)}; the builder reads only regular files of the codeset"


def check_regular(path: Path, shown: str, limit: int) -> None:
    """StepError unless `path` is a regular file of at most `limit` bytes."""
    why = regular_problem(path, shown)
    if why:
        raise StepError(why)
    size = os.stat(path).st_size
    if size > limit:
        raise StepError(too_large(shown, limit))


def too_large(shown: str, limit: int) -> str:
    return (
        f"{shown}: larger than {limit // KIB} KiB, the builder's limit for this file; "
        "check that it is the file you meant"
    )


def read_bytes(path: Path, shown: str, limit: int) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them (StepError otherwise)."""
    why = regular_problem(path, shown)
    if why:
        raise StepError(why)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise StepError(f"{shown}: cannot be read ({exc.__class__.__name__})") from None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):  # replaced between stat and open
            raise StepError(f"{shown}: is {kind_of(mode)}; the builder reads only regular files")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise StepError(too_large(shown, limit))
    return data


def read_text(path: Path, shown: str, limit: int) -> str:
    """`read_bytes` decoded as UTF-8 (StepError when it is not)."""
    try:
        return read_bytes(path, shown, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise StepError(f"{shown}: is not UTF-8 text") from None

"""Run a program that the builder does not trust with only some folders in reach (Landlock).

The engine-less build may compile bytecode with the base image's own interpreter, run from
the base's extracted files on the builder (no container). The base may be the codeset's
(`docker_env`), so that interpreter is the codeset's code, started in a process of the
builder's user, where the registry's config file and the index's credential files are
readable. `confined()` makes it run under a Landlock domain (the kernel's unprivileged
sandbox, Documentation/userspace-api/landlock.rst; Linux 5.13+, enabled when `landlock` is in
the kernel's LSM list): it may read and execute beneath the `read` folders, write beneath the
`write` folders, and open no other file; with ABI 4 and newer it may neither connect nor
bind a TCP socket; with ABI 6 and newer it may signal no process and reach no abstract Unix
socket outside its domain. A process in a Landlock domain cannot ptrace one outside it.

The domain is set by this file run as a script (`python -I -S landlock.py --read DIR ...
-- ARGV`) by the builder's own interpreter, which then execs ARGV: `prctl(PR_SET_NO_NEW_PRIVS)`,
`landlock_create_ruleset`, one `landlock_add_rule` (LANDLOCK_RULE_PATH_BENEATH) per folder,
`landlock_restrict_self`. Standard library only, so that it runs as a script.
"""

from __future__ import annotations

import ctypes
import os
import sys

# <linux/landlock.h>; the system call numbers are the same on every architecture.
CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
READ = EXECUTE | READ_FILE | READ_DIR
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
PR_SET_NO_NEW_PRIVS = 38


class RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [
        ("allowed_access", ctypes.c_uint64),
        ("parent_fd", ctypes.c_int32),
    ]


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi_version() -> int:
    """The kernel's Landlock ABI version (1 to 7 as of Linux 6.15), or 0 where there is none
    (not Linux, a kernel without it, or Landlock not in its LSM list)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        found = _libc().syscall(
            ctypes.c_long(CREATE_RULESET), None, ctypes.c_size_t(0),
            ctypes.c_uint32(CREATE_RULESET_VERSION),
        )  # fmt: skip
    except (OSError, AttributeError):
        return 0
    return max(int(found), 0)


def fs_rights(abi: int) -> int:
    """Every filesystem right the ABI knows: 13 in ABI 1, REFER (2), TRUNCATE (3),
    IOCTL_DEV (5)."""
    bits = 13 + (abi >= 2) + (abi >= 3) + (abi >= 5)
    return (1 << bits) - 1


def confined(argv: list[str], read: list[str], write: list[str]) -> list[str]:
    """The argv that runs `argv` with only `read` (read and execute beneath each folder) and
    `write` (anything beneath each folder) in reach, no TCP and no signals to other domains
    (where the ABI has them); run by this interpreter, isolated. Raises OSError when the
    kernel has no Landlock (`abi_version() == 0`)."""
    if abi_version() < 1:
        raise OSError("this kernel has no Landlock (Linux 5.13+, `landlock` in its LSM list)")
    rules = [arg for folder in read for arg in ("--read", folder)]
    rules += [arg for folder in write for arg in ("--write", folder)]
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), *rules, "--", *argv]


def restrict(read: list[str], write: list[str]) -> None:
    """Put this process (and what it execs) in a new Landlock domain; OSError on failure."""
    libc, abi = _libc(), abi_version()
    if abi < 1:
        raise OSError("this kernel has no Landlock")
    handled = fs_rights(abi)
    attr = RulesetAttr(handled, NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
                       SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0)  # fmt: skip
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = libc.syscall(ctypes.c_long(CREATE_RULESET), ctypes.byref(attr),
                           ctypes.c_size_t(size), ctypes.c_uint32(0))  # fmt: skip
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        for folders, access in ((read, READ), (write, handled)):
            for folder in folders:
                fd = os.open(folder, os.O_PATH | os.O_CLOEXEC | os.O_DIRECTORY)
                try:
                    rule = PathBeneathAttr(access, fd)
                    if libc.syscall(ctypes.c_long(ADD_RULE), ctypes.c_int(ruleset),
                                    ctypes.c_int(RULE_PATH_BENEATH), ctypes.byref(rule),
                                    ctypes.c_uint32(0)) != 0:  # fmt: skip
                        raise OSError(ctypes.get_errno(), f"landlock_add_rule {folder}")
                finally:
                    os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(ctypes.c_long(RESTRICT_SELF), ctypes.c_int(ruleset),
                        ctypes.c_uint32(0)) != 0:  # fmt: skip
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def main(args: list[str]) -> int:
    read: list[str] = []
    write: list[str] = []
    while args and args[0] != "--":
        option, folder, args = args[0], args[1], args[2:]
        (read if option == "--read" else write).append(folder)
    argv = args[1:]
    try:
        restrict(read, write)
        os.execv(argv[0], argv)
    except OSError as error:
        sys.stderr.write(f"landlock: {error}\n")
    return 126


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Run a program the builder does not trust with only some folders in reach, and no sockets.

The engine-less build may compile bytecode with the base image's own interpreter, run from
the base's extracted files on the builder (no container). The base may be the codeset's
(`docker_env`), so that interpreter is the codeset's code, started as the builder's user, where
the registry's config file and the index's credential files are readable. `confined()` runs it:

- under a Landlock domain (the kernel's unprivileged sandbox,
  Documentation/userspace-api/landlock.rst; Linux 5.13+, with `landlock` in the LSM list): it
  may read and execute beneath the `read` folders, write beneath the `write` folders (the
  builder gives it none: `host_install.Compiler` takes its output over a pipe), and open no
  other file; a process in a Landlock domain cannot ptrace one outside it; with ABI 4+ no TCP,
  with ABI 6+ no signal or abstract Unix socket outside its domain;
- under a seccomp filter (Documentation/userspace-api/seccomp_filter.rst) that fails with
  EPERM, whatever the Landlock ABI, `socket`, `socketpair` and `io_uring_setup` (no UDP, no
  pathname Unix socket such as a container engine's, no TCP on old kernels), what Landlock
  leaves to a file's owner (chmod, chown, utime, extended attributes), the kernel keyring,
  System V IPC and `unshare` (`REFUSED`); any other architecture's system call kills it;
- with `RLIMIT_NPROC` 0 it cannot fork, so nothing of it outlives it (for a non-root user;
  root is not bound by that limit); `RLIMIT_CPU` and `RLIMIT_FSIZE` bound its CPU time and what
  it writes to its stderr file.

The domain is set by this file run as a script (`python -I -S confinement.py --read DIR ...
-- ARGV`) by the builder's own interpreter, which then execs ARGV: `prctl(PR_SET_NO_NEW_PRIVS)`,
`landlock_create_ruleset`, one `landlock_add_rule` (LANDLOCK_RULE_PATH_BENEATH) per folder,
`landlock_restrict_self`, `prctl(PR_SET_SECCOMP)`, `setrlimit`. Standard library only, so that it
runs as a script.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import struct
import sys

# <linux/landlock.h>; the system call numbers are the same on every architecture.
CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
READ = EXECUTE | READ_FILE | READ_DIR
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2

# <linux/audit.h> architectures, and the calls refused on each, from the kernel's syscall
# tables (arch/x86/entry/syscalls/syscall_64.tbl, include/uapi/asm-generic/unistd.h):
# sockets (socket, socketpair, io_uring_setup: an io_uring opens sockets too); what Landlock
# leaves to a file's owner (the chmod, chown, utime and set/remove xattr families, which would
# change files it may not even read); the kernel keyring and System V IPC (a token kept there
# would be readable); unshare.
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
NO_SOCKETS = {"x86_64": (41, 53, 425), "aarch64": (198, 199, 425)}
REFUSED = {
    "x86_64": NO_SOCKETS["x86_64"]
    + (90, 91, 92, 93, 94, 260, 268, 452)  # chmod, fchmod, chown, fchown, lchown, fchownat,
    # fchmodat, fchmodat2
    + (132, 235, 261, 280)  # utime, utimes, futimesat, utimensat
    + (188, 189, 190, 197, 198, 199, 463, 466)  # set/remove xattr, setxattrat, removexattrat
    + (248, 249, 250)  # add_key, request_key, keyctl
    + (29, 30, 31, 64, 65, 66, 68, 69, 70, 71, 220)  # shm*, sem*, msg*, semtimedop
    + (272,),  # unshare
    "aarch64": NO_SOCKETS["aarch64"]
    + (52, 53, 54, 55, 452)  # fchmod, fchmodat, fchownat, fchown, fchmodat2
    + (88,)  # utimensat
    + (5, 6, 7, 14, 15, 16, 463, 466)  # set/remove xattr, setxattrat, removexattrat
    + (217, 218, 219)  # add_key, request_key, keyctl
    + (186, 187, 188, 189, 190, 191, 192, 193, 194, 195, 196)  # msg*, sem*, shm*
    + (97,),  # unshare
}
CPU_SECONDS = 1800  # RLIMIT_CPU: a compiler that spins is killed (SIGXCPU)
FILE_BYTES = 16 << 20  # RLIMIT_FSIZE: its stderr (a file) stays small (SIGXFSZ beyond)
X32_BIT = 0x40000000  # x86_64's x32 ABI: its numbers carry this bit
# <linux/filter.h>, <linux/seccomp.h>
LD_W_ABS, JEQ_K, JGE_K, RET_K = 0x20, 0x15, 0x35, 0x06
RET_ALLOW, RET_KILL_PROCESS, RET_EPERM = 0x7FFF0000, 0x80000000, 0x00050000 | 1


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


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


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


def available() -> bool:
    """Whether `confined` can run a program here: Landlock, and a machine whose system calls
    the seccomp filter names (x86_64, aarch64)."""
    return abi_version() >= 1 and platform.machine() in AUDIT_ARCH


def fs_rights(abi: int) -> int:
    """Every filesystem right the ABI knows: 13 in ABI 1, REFER (2), TRUNCATE (3),
    IOCTL_DEV (5)."""
    bits = 13 + (abi >= 2) + (abi >= 3) + (abi >= 5)
    return (1 << bits) - 1


def confined(argv: list[str], read: list[str], write: list[str]) -> list[str]:
    """The argv that runs `argv` with only `read` (read and execute beneath each folder) and
    `write` (anything beneath each folder) in reach, no socket and no fork (module doc); run
    by this interpreter, isolated. Raises OSError where that cannot be done (`available()`)."""
    if not available():
        raise OSError(
            "this kernel has no Landlock (Linux 5.13+, `landlock` in its LSM list) or this "
            f"machine ({platform.machine()}) is not one the seccomp filter knows"
        )
    rules = [arg for folder in read for arg in ("--read", folder)]
    rules += [arg for folder in write for arg in ("--write", folder)]
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), *rules, "--", *argv]


def seccomp_program(machine: str) -> bytes:
    """The classic BPF program (struct sock_filter[]) of the filter in the module doc."""
    refused = REFUSED[machine]
    program = [(LD_W_ABS, 0, 0, 4), (JEQ_K, 1, 0, AUDIT_ARCH[machine]),  # seccomp_data.arch
               (RET_K, 0, 0, RET_KILL_PROCESS), (LD_W_ABS, 0, 0, 0)]  # fmt: skip
    checks = [(JEQ_K, 0, 0, number) for number in refused]
    if machine == "x86_64":
        checks.insert(0, (JGE_K, 0, 0, X32_BIT))
    for at, (code, _, _, k) in enumerate(checks):  # jump to the EPERM return when it matches
        program.append((code, len(checks) - at, 0, k))
    program += [(RET_K, 0, 0, RET_ALLOW), (RET_K, 0, 0, RET_EPERM)]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


def restrict(read: list[str], write: list[str]) -> None:
    """Put this process (and what it execs) in the confinement of the module doc; OSError
    on failure."""
    libc, abi, machine = _libc(), abi_version(), platform.machine()
    if abi < 1 or machine not in AUDIT_ARCH:
        raise OSError("confinement is not available here")
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
    program = seccomp_program(machine)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_BYTES, FILE_BYTES))


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
        sys.stderr.write(f"confinement: {error}\n")
    return 126


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

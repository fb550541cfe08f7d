"""components/confinement.py: what a confined program can no longer do, on this kernel."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mlflow_steps.components import confinement
from tests.support.require import require

PYTHON_FILES = sorted(
    {sys.base_prefix, os.path.realpath(sys.base_prefix), "/usr", "/lib", "/lib64"}
)


def run_confined(code: str, read: list[str], write: list[str]) -> subprocess.CompletedProcess:
    require(confinement.available(), "needs Landlock (Linux 5.13+, `landlock` LSM), x86_64/arm64")
    argv = confinement.confined([sys.executable, "-I", "-S", "-c", code],
                                [*PYTHON_FILES, *read], write)  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_only_the_folders_given_are_read_or_written(tmp_path):
    (tmp_path / "readable").mkdir()
    (tmp_path / "readable" / "a").write_text("A")
    (tmp_path / "writable").mkdir()
    (tmp_path / "secret").write_text("s3cret")
    code = f"""
import os
print(open({str(tmp_path / "readable" / "a")!r}).read())
open({str(tmp_path / "writable" / "b")!r}, "w").write("B")
for attempt in ({str(tmp_path / "secret")!r}, "/proc/1/environ"):
    try:
        open(attempt).read()
        print("READ", attempt)
    except PermissionError:
        pass
try:
    open({str(tmp_path / "readable" / "c")!r}, "w")
    print("WROTE")
except PermissionError:
    pass
"""
    done = run_confined(code, [str(tmp_path / "readable")], [str(tmp_path / "writable")])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["A"]
    assert (tmp_path / "writable" / "b").read_text() == "B"


def test_no_socket_of_any_family_opens(tmp_path):
    """TCP, UDP and pathname Unix sockets (a container engine's, a session bus): seccomp
    fails socket() itself, whatever the Landlock ABI (attack review: UDP and a Unix socket
    were reachable under Landlock alone)."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "engine.sock"))
    server.listen()
    code = """
import socket
for family, kind in ((socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET, socket.SOCK_DGRAM),
                     (socket.AF_INET6, socket.SOCK_DGRAM), (socket.AF_UNIX, socket.SOCK_STREAM)):
    try:
        socket.socket(family, kind)
        print("OPENED", family, kind)
    except PermissionError:
        print("refused")
"""
    try:
        done = run_confined(code, [str(tmp_path)], [])
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["refused"] * 4


def test_the_seccomp_program_returns_eperm_for_each_refused_call():
    """The BPF jumps, read back: each refused number reaches the EPERM return."""
    import struct

    for machine, refused in confinement.NO_SOCKETS.items():
        program = confinement.seccomp_program(machine)
        code = [struct.unpack("=HBBI", program[at : at + 8]) for at in range(0, len(program), 8)]
        eperm = len(code) - 1
        assert code[eperm] == (confinement.RET_K, 0, 0, confinement.RET_EPERM)
        for number in refused:
            (at,) = [i for i, c in enumerate(code) if c[0] == confinement.JEQ_K and c[3] == number]
            assert at + 1 + code[at][1] == eperm


def test_without_landlock_nothing_is_started(monkeypatch):
    monkeypatch.setattr(confinement, "abi_version", lambda: 0)
    with pytest.raises(OSError, match="no Landlock"):
        confinement.confined(["/bin/true"], [], [])


def test_a_non_root_confined_program_cannot_fork():
    """RLIMIT_NPROC 0: nothing of it outlives it (a `setsid` child kept writing the staged
    tree after the compiler ended, in the attack review)."""
    require(os.geteuid() == 0, "needs root to start a program as another user")
    require(confinement.available(), "needs Landlock (Linux 5.13+, `landlock` LSM), x86_64/arm64")
    system_python = "/usr/bin/python3"
    require(os.path.exists(system_python), "needs Debian's python3")
    with tempfile.TemporaryDirectory() as folder:  # the tests' own folders are root's alone
        os.chmod(folder, 0o755)
        launcher = Path(folder) / "confinement.py"
        launcher.write_text(Path(confinement.__file__).read_text())
        launcher.chmod(0o644)
        done = run_as_nobody(system_python, launcher)
    assert "FORKED" not in done.stdout and "fork" in done.stderr.lower(), done


def run_as_nobody(python: str, launcher: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-I",
         "-S", str(launcher), "--read", "/usr", "--read", "/lib", "--read", "/lib64",
         "--read", "/bin", "--", "/bin/sh", "-c", "/bin/true && echo FORKED"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_what_landlock_leaves_to_a_files_owner_is_refused_too(tmp_path):
    """chmod, utime and extended attributes are not Landlock rights (attack review: a confined
    program made a credential file it could not read world-readable); seccomp refuses them."""
    target = tmp_path / "config.json"
    target.write_text("{}")
    target.chmod(0o600)
    code = f"""
import os
for name, call in (("chmod", lambda: os.chmod({str(target)!r}, 0o666)),
                   ("utime", lambda: os.utime({str(target)!r}, (0, 0))),
                   ("setxattr", lambda: os.setxattr({str(target)!r}, "user.x", b"1"))):
    try:
        call()
        print(name, "DONE")
    except PermissionError:
        print(name, "refused")
"""
    done = run_confined(code, [str(tmp_path)], [])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["chmod", "refused", "utime", "refused", "setxattr", "refused"]
    assert target.stat().st_mode & 0o777 == 0o600

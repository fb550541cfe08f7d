"""The base read from its layer tarballs: layers made here from this machine's real interpreter
and C library (Debian's /usr/bin/python3.X and libc.so.6), stacked with whiteouts and
merged-/usr symlinks; the versions are read from the files' bytes, never by running them."""

from __future__ import annotations

import gzip
import hashlib
import io
import platform
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from mlflow_steps.components.builder.backends.layered import base_files
from mlflow_steps.components.builder.backends.layered.base_files import (
    apply_layer,
    facts_of,
    merge,
    resolve_path,
    summarize,
    version_in,
)
from mlflow_steps.components.problems import StepError
from tests.support.require import require

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ARCH = platform.machine()
MULTIARCH = f"usr/lib/{ARCH}-linux-gnu"


def system_python() -> Path:
    found = sorted(Path("/usr/bin").glob("python3.[0-9]*"))
    found = [path for path in found if re.fullmatch(r"python3\.\d+", path.name)]
    require(bool(found), "needs a distribution python3.X in /usr/bin")
    return found[0]


def system_libc() -> Path:
    path = Path(f"/lib/{ARCH}-linux-gnu/libc.so.6")
    require(path.exists(), f"needs glibc at {path}")
    return path


def layer(members: list[tuple[str, str, object]]) -> tuple[bytes, str]:
    """(gzip tar, digest) of members (name, kind f/l/d, bytes or link target)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "l":
                info.type, info.linkname = tarfile.SYMTYPE, str(value)
                tar.addfile(info)
            elif kind == "d":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                data = bytes(value)  # type: ignore[call-overload]
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    blob = gzip.compress(raw.getvalue())
    return blob, "sha256:" + hashlib.sha256(blob).hexdigest()


def summary(members) -> dict:
    blob, digest = layer(members)
    return summarize(io.BytesIO(blob), digest, GZIP)


def test_versions_come_from_the_files_bytes():
    python, libc = system_python(), system_libc()
    ran = subprocess.run([str(python), "-c", "import platform; print(platform.python_version())"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert version_in(python.name, python.read_bytes()) == ran.stdout.strip()
    glibc = (
        platform.libc_ver(str(libc))[1]
        or subprocess.run(["ldd", "--version"], capture_output=True, text=True).stdout.split()[3]
    )
    assert version_in("libc.so.6", libc.read_bytes()) == glibc
    assert version_in("libc.so.6", b"no banner here") == ""


def test_a_layer_whose_bytes_do_not_match_its_digest_is_refused():
    blob, digest = layer([("etc/hostname", "f", b"base\n")])
    tampered = blob[:-8] + gzip.compress(b"")[-8:]
    with pytest.raises(Exception) as caught:
        summarize(io.BytesIO(tampered), digest, GZIP)
    assert isinstance(caught.value, (StepError, EOFError, OSError, tarfile.TarError))
    other = "sha256:" + "0" * 64
    with pytest.raises(StepError, match="does not match its digest"):
        summarize(io.BytesIO(blob), other, GZIP)


def test_stacked_layers_give_the_interpreter_glibc_and_libraries():
    python, libc = system_python(), system_libc()
    lower = summary([
        ("lib", "l", "usr/lib"),
        ("usr/bin/python3", "l", python.name),
        (f"usr/bin/{python.name}", "f", python.read_bytes()),
        (f"{MULTIARCH}/libc.so.6", "f", libc.read_bytes()),
        (f"{MULTIARCH}/libgomp.so.1", "l", "libgomp.so.1.0.0"),
        (f"{MULTIARCH}/libgomp.so.1.0.0", "f", b"\x7fELF"),
        ("usr/share/doc/libgomp1/copyright", "f", b"GPL"),
    ])  # fmt: skip
    upper = summary([
        (f"{MULTIARCH}/.wh.libgomp.so.1", "f", b""),
        (f"{MULTIARCH}/.wh.libgomp.so.1.0.0", "f", b""),
        ("usr/share/doc/.wh..wh..opq", "f", b""),
        ("usr/local/lib/libextra.so.2", "f", b"\x7fELF"),
    ])  # fmt: skip
    tree, _ = merge([lower, upper])
    assert f"{MULTIARCH}/libgomp.so.1" not in tree
    assert "usr/share/doc/libgomp1/copyright" not in tree
    assert resolve_path(tree, f"/lib/{ARCH}-linux-gnu/libc.so.6") == f"{MULTIARCH}/libc.so.6"
    config = {"config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]}}
    facts = facts_of([lower, upper], config, ARCH, "test/base")
    assert facts.executable == f"/usr/bin/{python.name}"
    assert facts.python == version_in(python.name, python.read_bytes())
    assert facts.python.startswith(python.name[len("python") :] + ".")
    assert facts.glibc == version_in("libc.so.6", libc.read_bytes())
    assert {"libc.so.6", "libextra.so.2"} <= facts.libraries
    assert "libgomp.so.1" not in facts.libraries
    # Without the whiteouts, libgomp is there.
    assert "libgomp.so.1" in facts_of([lower], config, ARCH, "test/base").libraries


def test_a_base_without_python_on_its_path_is_named():
    bare = summary([("bin/sh", "f", b"#!"), ("opt/python3", "f", b"")])
    config = {"config": {"Env": ["PATH=/bin"]}}
    with pytest.raises(StepError, match=r"test/base: no python3 on its PATH \(/bin\)"):
        facts_of([bare], config, ARCH, "test/base")


def test_python_version_falls_back_to_the_config_then_the_file_name():
    fake = summary([("usr/local/bin/python3", "l", "python3.12"),
                    ("usr/local/bin/python3.12", "f", b"no version literal")])  # fmt: skip
    declared = {"config": {"Env": ["PYTHON_VERSION=3.12.7"]}}
    assert facts_of([fake], declared, ARCH, "b").python == "3.12.7"
    assert facts_of([fake], {}, ARCH, "b").python == "3.12.0"
    assert facts_of([fake], {}, ARCH, "b").glibc == ""  # no C library: not a glibc base


def test_the_builders_own_python_is_readable_this_way():
    """A sanity check of the regex on the interpreter running the tests (a pyenv or Debian
    build): its PY_VERSION literal, or its libpython's, is found."""
    exe = Path(sys.executable).resolve()
    candidates = [exe, *Path(sys.base_prefix, "lib").glob("libpython3*.so*")]
    candidates += Path(sys.base_prefix, "include").glob("python3*/patchlevel.h")
    found = {version_in(path.name, path.read_bytes()) for path in candidates}
    assert platform.python_version() in found


@pytest.mark.parametrize("isal", [True, False], ids=["isal", "zlib"])
def test_a_multi_member_gzip_layer_is_read_to_its_end(monkeypatch, isal):
    """The builder writes its own layers as multi-member gzip streams (RFC 1952 2.2): a base
    made by mlflow-steps is read whole, with ISA-L or with zlib (tarfile's `r|gz` stops after
    the first member)."""
    if not isal:
        monkeypatch.setattr(base_files, "_IGzipFile", None)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("first", "second"):
            data = name.encode() * 4000
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = tar_bytes.getvalue()
    half = len(raw) // 2
    blob = gzip.compress(raw[:half]) + gzip.compress(raw[half:])
    with base_files.open_tar(io.BytesIO(blob), base_files.GZIP_LAYERS[0]) as tar:
        assert [member.name for member in tar] == ["first", "second"]


def test_a_base_layers_hardlink_never_reaches_outside_the_tree(tmp_path):
    """A hostile base layer's hardlink `usr/../../../outside/secret` once linked a file of the
    builder's own disk into the extracted base (found by this round's attack review); links
    are now rooted in the tree, and a link under a dangling symlink is skipped, not a
    traceback."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("HOST SECRET")
    rootfs = tmp_path / "part" / "rootfs"
    rootfs.mkdir(parents=True)
    (tmp_path / "part" / "rootfs-other").mkdir()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:

        def add(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b""):
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, link, len(data)
            tar.addfile(info, io.BytesIO(data))

        add("usr/", tarfile.DIRTYPE)
        add("usr/kept", data=b"kept")
        add("usr/hl", tarfile.LNKTYPE, "usr/../../../outside/secret")
        add("usr/same", tarfile.LNKTYPE, "./usr/kept")
        add("dangling", tarfile.SYMTYPE, "/nowhere/at/all")
        add("dangling/x", data=b"x")
        add("sib", tarfile.SYMTYPE, "../rootfs-other")
        add("sib/y", data=b"y")
    blob = raw.getvalue()
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    apply_layer(io.BytesIO(blob), digest, "application/vnd.oci.image.layer.v1.tar", rootfs)
    assert not (rootfs / "usr" / "hl").exists()
    assert (rootfs / "usr" / "same").read_bytes() == b"kept"
    assert not list((tmp_path / "part" / "rootfs-other").iterdir())
    assert (outside / "secret").stat().st_nlink == 1


@pytest.mark.parametrize("isal", [True, False], ids=["isal", "zlib"])
def test_a_corrupt_base_layer_is_a_clear_error(monkeypatch, tmp_path, isal):
    """A truncated gzip layer and one that is not gzip at all: a StepError naming the layer,
    never an EOFError or BadGzipFile traceback (attack review)."""
    if not isal:
        monkeypatch.setattr(base_files, "_IGzipFile", None)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("usr/bin/python3.11")
        data = b"\x003.11.2\x00" * 5000
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    good = gzip.compress(raw.getvalue())
    for blob in (good[: len(good) // 2], raw.getvalue()):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        with pytest.raises(StepError, match=rf"base image layer {digest} cannot be read"):
            summarize(io.BytesIO(blob), digest, base_files.GZIP_LAYERS[0])
        with pytest.raises(StepError, match=rf"base image layer {digest} cannot be read"):
            apply_layer(io.BytesIO(blob), digest, base_files.GZIP_LAYERS[0], tmp_path)


def test_a_huge_interpreter_file_is_not_read_for_its_version(monkeypatch):
    """A gzip bomb named like the interpreter (400 MiB of zeros in a few hundred KB) took the
    builder from 34 to 838 MiB: a file beyond VERSION_PROBE_LIMIT is listed, never read."""
    monkeypatch.setattr(base_files, "VERSION_PROBE_LIMIT", 1024)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, size in (("usr/bin/python3.11", 4096), ("usr/lib/libpython3.11.so.1.0", 20)):
            info = tarfile.TarInfo(name)
            data = (b"\x003.11.2\x00" * 1000)[:size]
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = raw.getvalue()
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    summary = summarize(io.BytesIO(blob), digest, "application/vnd.oci.image.layer.v1.tar")
    assert "usr/bin/python3.11" in summary["entries"]
    assert summary["versions"] == {"usr/lib/libpython3.11.so.1.0": "3.11.2"}

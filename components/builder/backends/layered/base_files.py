"""What the base image holds, read from its layer tarballs over HTTP: never pulled, never run.

Each layer blob is streamed once (gzip tar, its sha256 checked against its digest) and summed
up in a small JSON file kept by layer digest (`$XDG_CACHE_HOME/mlflow-steps/base-layers`, else
`~/.cache/...`): its paths (files, symlinks with their targets, whiteouts) and the versions
found in the files that name them. The layers are then merged as a container runtime stacks
them (OCI image spec, layer.md: `.wh.NAME` deletes NAME, `.wh..wh..opq` empties its folder).

From the merged tree:

- the interpreter: the first `python3` (else `python`) on the config's PATH, its symlinks
  followed inside the tree (`executable`, e.g. /usr/bin/python3.11);
- its version: `PY_VERSION`, the NUL-terminated literal in the interpreter or its libpython
  (`3.11.2`) or the one patchlevel.h defines (the python:3.x images), else the config's
  PYTHON_VERSION, else X.Y.0 from the file name;
- the glibc version: from `libc-2.NN.so` file names (glibc < 2.34), else the `GNU C Library
  ... release version 2.NN` banner inside libc.so.6; "" when there is no glibc (musl);
- the shared libraries it provides: every `*.so*` name in the standard library folders
  (/lib, /usr/lib, /usr/local/lib, their lib64 and multiarch `<arch>-linux-gnu` folders).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import posixpath
import re
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

try:
    from isal.igzip import IGzipFile as _IGzipFile
    from isal.isal_zlib import error as _IsalError
except ImportError:  # pragma: no cover (a platform without isal's wheels)
    _IGzipFile = None  # type: ignore[assignment,misc]
    _IsalError = OSError  # type: ignore[assignment,misc]


from ....problems import StepError
from ...oci.registry_push import RegistryWriter
from .image import BaseImage, Reference
from .wheels import Target

# What a truncated, corrupt or non-gzip layer raises while it is read (OSError: BadGzipFile).
# (isal's stub types its error as an instance, hence the ignore.)
UNREADABLE: tuple[type[BaseException], ...] = (  # type: ignore[assignment]
    EOFError,
    OSError,
    tarfile.TarError,
    zlib.error,
    _IsalError,
)
# The largest file read whole for a version (libpython3.X.so and libc.so.6 are a few MiB): a
# layer's file beyond it is not read, so a small gzip bomb cannot fill the builder's memory.
VERSION_PROBE_LIMIT = 64 * 1024 * 1024

GZIP_LAYERS = (
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
)
PLAIN_LAYERS = ("application/vnd.oci.image.layer.v1.tar",)
SUMMARY_VERSION = 1
LIBC_FILE = re.compile(r"^libc-(\d+\.\d+)\.so$")
LIBC_BANNER = re.compile(rb"GNU C Library [^\n]*?release version (\d+\.\d+)")
PYTHON_FILE = re.compile(r"^(?:python|libpython)(3\.\d+)")
PATCHLEVEL = re.compile(rb'#define PY_VERSION\s+"(3\.\d+\.\d+)')
VERSIONED = ("libc.so.6", "patchlevel.h")
SHARED = re.compile(r"\.so(\.[0-9.]+)?$")
LOADERS = {"x86_64": "lib64/ld-linux-x86-64.so.2", "aarch64": "lib/ld-linux-aarch64.so.1"}
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def library_folders(machine: str) -> frozenset[str]:
    folders = ["lib", "lib64", "usr/lib", "usr/lib64", "usr/local/lib", "usr/local/lib64"]
    folders += [f"{folder}/{machine}-linux-gnu" for folder in ("lib", "usr/lib", "usr/local/lib")]
    return frozenset(folders)


@dataclass(frozen=True)
class BaseFacts:
    """The base's interpreter and C library, as its files tell them."""

    python: str  # full version, e.g. 3.11.2
    machine: str  # e.g. x86_64
    glibc: str  # e.g. 2.36; "" without glibc
    executable: str  # image path of the interpreter, symlinks followed (/usr/bin/python3.11)
    libraries: frozenset[str]  # sonames found in the standard library folders
    loader: str = ""  # image path of the dynamic loader (ld-linux), symlinks followed
    library_path: tuple[str, ...] = ()  # image paths of the library folders it has

    @property
    def target(self) -> Target:
        return Target(self.python, self.machine, self.glibc)

    def as_json(self) -> str:
        data = {**self.__dict__, "libraries": sorted(self.libraries)}
        data["library_path"] = list(self.library_path)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> BaseFacts | None:
        """The facts `as_json` wrote; None for anything else."""
        try:
            data = json.loads(text)
            data["libraries"] = frozenset(data["libraries"])
            data["library_path"] = tuple(data["library_path"])
            return cls(**data)
        except (ValueError, TypeError, KeyError):
            return None


def cache_folder() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "mlflow-steps" / "base-layers"


class _Hashing:
    """A read-only stream that hashes what is read through it."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.hash.update(data)
        return data

    def readinto(self, buffer) -> int:  # what ISA-L's reader calls
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def open_tar(stream, media_type: str) -> tarfile.TarFile:
    """The layer's tar, read as a stream: a gzip layer inflated by ISA-L (python-isal, the
    same format, faster) where it is installed, else by zlib's `gzip.GzipFile`. Both read
    every member of a multi-member gzip (RFC 1952 2.2), as the builder's own layers are
    written; tarfile's `r|gz` stops after the first."""
    if media_type not in GZIP_LAYERS:
        return tarfile.open(fileobj=stream, mode="r|")
    opener = _IGzipFile if _IGzipFile is not None else gzip.GzipFile
    return tarfile.open(fileobj=opener(fileobj=stream, mode="rb"), mode="r|")


def summarize(stream, digest: str, media_type: str) -> dict:
    """One layer's summary (see the module doc) from its blob stream, digest checked.
    StepError when the layer cannot be read (truncated, corrupt, not the type it says)."""
    try:
        return _summarize(stream, digest, media_type)
    except UNREADABLE as error:
        raise StepError(f"base image layer {digest} cannot be read ({error})") from None


def _summarize(stream, digest: str, media_type: str) -> dict:
    hashing = _Hashing(stream)
    entries: dict[str, list[str]] = {}
    versions: dict[str, str] = {}
    with open_tar(hashing, media_type) as tar:
        for member in tar:
            path = posixpath.normpath(member.name.lstrip("./") or ".").lstrip("/")
            if path == ".":
                continue
            if member.issym():
                entries[path] = ["l", member.linkname]
            elif member.islnk():
                entries[path] = ["h", posixpath.normpath(member.linkname.lstrip("./"))]
            elif member.isdir():
                entries[path] = ["d", ""]
            else:
                entries[path] = ["f", ""]
                name = posixpath.basename(path)
                if (
                    member.isfile()
                    and member.size <= VERSION_PROBE_LIMIT
                    and (name in VERSIONED or PYTHON_FILE.match(name))
                ):
                    handle = tar.extractfile(member)
                    found = version_in(name, handle.read() if handle else b"")
                    if found:
                        versions[path] = found
    while hashing.read(1 << 20):
        pass
    if "sha256:" + hashing.hash.hexdigest() != digest:
        raise StepError(f"base image layer {digest} does not match its digest")
    return {"version": SUMMARY_VERSION, "entries": entries, "versions": versions}


def version_in(name: str, data: bytes) -> str:
    """glibc's version in libc.so.6, or PY_VERSION in a python3.X / libpython3.X file or in
    Python's patchlevel.h."""
    if name in VERSIONED:
        found = (LIBC_BANNER if name == "libc.so.6" else PATCHLEVEL).search(data)
        return found.group(1).decode() if found else ""
    minor = PYTHON_FILE.match(name)
    if not minor:
        return ""
    literal = re.search(rb"\x00(" + re.escape(minor.group(1).encode()) + rb"\.\d+)\x00", data)
    return literal.group(1).decode() if literal else ""


def layer_summary(writer: RegistryWriter, repository: str, digest: str, media_type: str) -> dict:
    """The summary of one layer, from the cache or streamed from the registry (then kept)."""
    kept = cache_folder() / f"{digest.replace(':', '-')}.json"
    try:
        summary = json.loads(kept.read_text())
        if summary.get("version") == SUMMARY_VERSION:
            return summary
    except (OSError, ValueError):
        pass
    if media_type not in GZIP_LAYERS + PLAIN_LAYERS:
        raise StepError(
            f"base image layer {digest} is {media_type}; the engine-less builder reads gzip "
            "and plain tar layers only"
        )
    url = f"{writer.base}/v2/{repository}/blobs/{digest}"
    response = writer.send("GET", url, repository, stream=True)
    if response.status_code != 200:
        raise writer.fail(response, f"GET blob {digest}", repository)
    with response:
        summary = summarize(response.raw, digest, media_type)
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        part = kept.with_suffix(f".{os.getpid()}.part")
        part.write_text(json.dumps(summary))
        os.replace(part, kept)
    except OSError:
        pass  # a read-only home: read again next time
    return summary


def merge(summaries: list[dict]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The stacked tree ({path: [kind, link]}) and versions ({path: version})."""
    tree: dict[str, list[str]] = {}
    versions: dict[str, str] = {}
    # Every folder that has (or had) something below it, with its parents (it only grows):
    # only these need a scan for what they hold, so an entry costs one lookup, not one pass
    # over the tree.
    holding: set[str] = set()

    def remove(prefix: str, itself: bool) -> None:
        if itself and prefix in tree:
            del tree[prefix]
            versions.pop(prefix, None)
        if prefix in holding:
            below = prefix + "/"
            for path in [p for p in tree if p.startswith(below)]:
                del tree[path]
                versions.pop(path, None)

    for summary in summaries:
        for path in summary["entries"]:
            folder, name = posixpath.split(path)
            if name == ".wh..wh..opq":
                remove(folder, itself=False)
            elif name.startswith(".wh."):
                remove(posixpath.join(folder, name[4:]), itself=True)
        for path, entry in summary["entries"].items():
            if not posixpath.basename(path).startswith(".wh."):
                if entry[0] != "d" or tree.get(path, ["d"])[0] != "d":
                    remove(path, itself=True)
                tree[path] = entry
                parent = posixpath.dirname(path)
                while parent and parent not in holding:
                    holding.add(parent)
                    parent = posixpath.dirname(parent)
        versions.update(summary["versions"])
    return tree, versions


def resolve_path(tree: dict[str, list[str]], path: str, depth: int = 0) -> str | None:
    """`path` (relative to /) with every symlink in it followed inside the tree; None when it
    leads nowhere."""
    if depth > 40:
        return None
    parts = [part for part in path.split("/") if part and part != "."]
    done = ""
    for index, part in enumerate(parts):
        here = posixpath.join(done, part) if done else part
        if part == "..":
            done = posixpath.dirname(done)
            continue
        entry = tree.get(here)
        if entry is None:
            if index == len(parts) - 1:
                return None
            done = here  # a folder the tar lists only through its files
            continue
        if entry[0] == "l":
            link = entry[1]
            start = "" if link.startswith("/") else done
            rest = "/".join(parts[index + 1 :])
            joined = posixpath.normpath(posixpath.join(start, link.lstrip("/"), rest))
            return resolve_path(tree, joined.lstrip("/") if joined != "." else "", depth + 1)
        if entry[0] == "h":
            here = entry[1]
        done = here
    return done


def read_base(writer: RegistryWriter, ref: Reference, base: BaseImage, machine: str) -> BaseFacts:
    """The base's facts (see the module doc). Raises StepError when it has no Python."""
    summaries = [
        layer_summary(writer, ref.repository, layer.digest, layer.media_type)
        for layer in base.layers
    ]
    return facts_of(summaries, base.config, machine, f"{ref.host}/{ref.repository}")


def facts_of(summaries: list[dict], config: dict, machine: str, where: str) -> BaseFacts:
    """The facts of the layers stacked (their summaries in order) and the image `config`."""
    tree, versions = merge(summaries)
    env = dict(
        item.split("=", 1) for item in config.get("config", {}).get("Env") or [] if "=" in item
    )
    executable = None
    for command in ("python3", "python"):
        for folder in env.get("PATH", DEFAULT_PATH).split(":"):
            found = resolve_path(tree, posixpath.join(folder, command))
            if found and tree.get(found, [""])[0] in ("f", "h"):
                executable = found
                break
        if executable:
            break
    if executable is None:
        raise StepError(
            f"base image {where}: no python3 on its PATH "
            f"({env.get('PATH', DEFAULT_PATH)}); choose a base with Python"
        )
    minor_match = PYTHON_FILE.match(posixpath.basename(executable))
    if not minor_match:
        raise StepError(
            f"base image {where}: its interpreter /{executable} names no Python version"
        )
    minor = minor_match.group(1)
    python = versions.get(executable) or next(
        (v for p, v in sorted(versions.items()) if v.startswith(minor + ".") and tree.get(p)), ""
    )
    if not python:
        declared = env.get("PYTHON_VERSION", "")
        python = declared if declared.startswith(minor + ".") else f"{minor}.0"
    folders = library_folders(machine)
    libraries = frozenset(
        posixpath.basename(path)
        for path in tree
        if posixpath.dirname(path) in folders and SHARED.search(path)
    )
    glibc = ""
    for path in sorted(tree):
        if posixpath.dirname(path) not in folders:
            continue
        old = LIBC_FILE.match(posixpath.basename(path))
        if old:
            glibc = old.group(1)
            break
        if posixpath.basename(path) == "libc.so.6":
            real = resolve_path(tree, path)
            glibc = versions.get(real or path, "") or versions.get(path, "")
            if glibc:
                break
    loader = resolve_path(tree, LOADERS.get(machine, "")) if machine in LOADERS else None
    searched = tuple(
        sorted(
            {
                "/" + posixpath.dirname(path)
                for path in tree
                if posixpath.dirname(path) in folders and SHARED.search(path)
            }
        )
    )
    return BaseFacts(python, machine, glibc, "/" + executable, libraries,
                     "/" + loader if loader else "", searched)  # fmt: skip


def extracted(writer: RegistryWriter, ref: Reference, base: BaseImage) -> Path:
    """The base's files, its layers stacked (whiteouts applied, owners and device files left
    out), extracted once into the builder's cache by manifest digest: the folder of its
    root. Run as any user: no chown, every file and folder readable by its owner."""
    kept = cache_folder().parent / "bases" / base.digest.replace(":", "-")
    if (kept / ".complete").exists():
        return kept / "rootfs"
    part = kept.with_name(f"{kept.name}.{os.getpid()}.part")
    shutil.rmtree(part, ignore_errors=True)
    rootfs = part / "rootfs"
    rootfs.mkdir(parents=True)
    for layer in base.layers:
        url = f"{writer.base}/v2/{ref.repository}/blobs/{layer.digest}"
        response = writer.send("GET", url, ref.repository, stream=True)
        if response.status_code != 200:
            raise writer.fail(response, f"GET blob {layer.digest}", ref.repository)
        with response:
            apply_layer(response.raw, layer.digest, layer.media_type, rootfs)
    (part / ".complete").touch()
    shutil.rmtree(kept, ignore_errors=True)
    os.replace(part, kept)
    return kept / "rootfs"


def apply_layer(stream, digest: str, media_type: str, rootfs: Path) -> None:
    """One layer's changes applied to `rootfs` (OCI image spec, layer.md), digest checked.
    StepError when the layer cannot be read (truncated, corrupt, not the type it says)."""
    try:
        _apply_layer(stream, digest, media_type, rootfs)
    except UNREADABLE as error:
        raise StepError(f"base image layer {digest} cannot be read ({error})") from None


def _apply_layer(stream, digest: str, media_type: str, rootfs: Path) -> None:
    hashing = _Hashing(stream)
    top = os.path.realpath(rootfs)
    with open_tar(hashing, media_type) as tar:
        for member in tar:
            path = posixpath.normpath(member.name.lstrip("./") or ".").lstrip("/")
            if path == "." or path.startswith("../"):
                continue
            folder, name = posixpath.split(path)
            parent = rootfs / folder
            if not within(top, os.path.realpath(parent)):
                continue  # through a symlink out of the tree: never written
            target = parent / name
            if name == ".wh..wh..opq":
                if parent.is_dir() and not parent.is_symlink():
                    for child in parent.iterdir():
                        remove(child)
                continue
            if name.startswith(".wh."):
                remove(parent / name[4:])
                continue
            if parent.is_symlink() and not parent.is_dir():
                continue  # under a dangling link: nothing of it is read
            parent.mkdir(parents=True, exist_ok=True)
            if not (member.isdir() and target.is_dir() and not target.is_symlink()):
                remove(target)
            if member.isdir():
                target.mkdir(exist_ok=True)
                target.chmod(0o755)
            elif member.issym():
                os.symlink(member.linkname, target)
            elif member.islnk():
                # Rooted before normalising, so `..` stops at the tree's top (OCI layer.md:
                # hardlinks name a path in the same tree), then resolved: never outside it.
                source = rootfs / posixpath.normpath("/" + member.linkname).lstrip("/")
                if source.is_file() and within(top, os.path.realpath(source)):
                    os.link(source, target)
            elif member.isfile():
                handle = tar.extractfile(member)
                with target.open("wb") as out:
                    shutil.copyfileobj(handle, out, 1 << 20)  # type: ignore[arg-type]
                target.chmod((member.mode & 0o755) | 0o600)
    while hashing.read(1 << 20):
        pass
    if "sha256:" + hashing.hash.hexdigest() != digest:
        raise StepError(f"base image layer {digest} does not match its digest")


def within(top: str, path: str) -> bool:
    """Whether `path` (resolved) is `top` or under it: a separator after `top`, so
    `/x/rootfs-other` is not under `/x/rootfs`."""
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)


def remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def interpreter_argv(rootfs: Path, facts: BaseFacts) -> list[str]:
    """The base's own interpreter, run from its extracted files without a container: its
    dynamic loader with --library-path into the tree (so the base's libc, never the
    builder's), `-S` (no site: nothing of the base's packages). Python finds its standard
    library from the interpreter's path (the landmark search of getpath)."""
    if not facts.loader:
        raise StepError(f"the base has no dynamic loader for {facts.machine}")
    inside = lambda path: str(rootfs / path.lstrip("/"))  # noqa: E731
    folders = ":".join(inside(folder) for folder in facts.library_path)
    return [inside(facts.loader), "--library-path", folders, inside(facts.executable), "-S"]

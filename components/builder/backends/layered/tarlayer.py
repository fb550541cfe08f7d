"""Deterministic OCI layers: the same files give the same bytes on every run.

A layer is a tar (POSIX pax format) of absolute image paths, entries sorted, every parent
directory present, owners uid/gid 0 without user or group names, every mtime the same
(SOURCE_DATE_EPOCH, else 0), modes reduced to 0755 (directories, executables) or 0644 and
symlinks kept as links. Apko and ko write their layers the same way. Compressed on every core
(pigz's idea, as separate members; by ISA-L where python-isal is installed, else zlib: the
compressor is part of each layer's identity, `COMPRESSOR`): the tar cut in `CHUNK`s, each a gzip
member of its own (no name, mtime 0, level `GZIP_LEVEL`), the members in order (RFC 1952 allows
any number; Go's and Python's readers read them all), so the bytes depend on the input only,
never on the number of cores. The `diff_id` is the SHA-256 of the tar, the `digest` that of the
gzip stream (OCI image spec, layer.md and config.md)."""

from __future__ import annotations

import gzip
import hashlib
import io
import multiprocessing
import os
import posixpath
import stat
import tarfile
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
# Level 1. With zlib, measured here on scipy 1.17.1: 28.7 MB in 2.5 s against 25.4 MB in 5.3 s
# at level 6 (gzip's default); numpy 2.4.6, 9.2 MB in 0.65 s against 7.9 MB in 2.0 s. Intel's
# ISA-L (python-isal, where it has wheels) writes the same format 5.5 times faster again at
# the same ratio: a 369 MB tar of scipy, pandas, numpy, scikit-learn and mlflow, in 4 MiB
# members on one core, 119.5 MB in 0.90 s against zlib's 118.5 MB in 5.01 s.
GZIP_LEVEL = 1
try:
    import isal
    from isal.igzip import compress as _gzip_compress

    COMPRESSOR = f"isal {isal.__version__} level {GZIP_LEVEL}"
except ImportError:  # pragma: no cover (a platform without isal's wheels)
    import zlib

    _gzip_compress = gzip.compress  # type: ignore[assignment]
    COMPRESSOR = f"zlib {zlib.ZLIB_RUNTIME_VERSION} level {GZIP_LEVEL}"
CHUNK = 4 << 20
# A member below this size goes through zlib: the builder's own small layers (the venv
# skeleton, the runtime module, the lock) must have the same digest in every build, and ISA-L
# gave one 10 KiB tar two different streams (358 and 360 bytes) in two builds of one CI run
# (not reproduced alone). Their speed does not matter; the large members keep ISA-L.
SMALL_MEMBER = 1 << 20
COMPRESSORS = ThreadPoolExecutor(os.cpu_count() or 1)  # zlib releases the GIL


class LayerWriters:
    """Where `write_layer` runs: `count` worker processes (its tar headers and hashing are
    Python code, so threads share one core's worth of it; a process each writes on its own
    core). Spawned, never forked from this multi-threaded process, and started at once so that
    their start overlaps the caller's work. Threads instead where processes cannot start: no
    multiprocessing or /dev/shm, or a caller's main module that builds when it is imported
    (multiprocessing's spawn imports it in every worker, and the worker refuses), or where
    the caller has little to write (`processes` false: a worker takes longer to start)."""

    def __init__(self, count: int = 2, processes: bool = True) -> None:
        self.count = count
        self.processes: ProcessPoolExecutor | None = None
        self.threads: ThreadPoolExecutor | None = None
        if not processes:
            return
        try:
            spawn = multiprocessing.get_context("spawn")
            self.processes = ProcessPoolExecutor(count, mp_context=spawn)
            self.started = [self.processes.submit(os.getpid) for _ in range(count)]
        except (ImportError, NotImplementedError, OSError):
            self.processes = None

    def executor(self) -> Executor:
        if self.processes is not None:
            try:
                for started in self.started:
                    started.result()
                return self.processes
            except BrokenProcessPool:
                self.processes.shutdown(wait=False)
                self.processes = None
        if self.threads is None:
            self.threads = ThreadPoolExecutor(self.count)
        return self.threads

    def __enter__(self) -> LayerWriters:
        return self

    def __exit__(self, *exc) -> None:
        for pool in (self.processes, self.threads):
            if pool is not None:
                pool.shutdown()


@dataclass(frozen=True)
class Entry:
    """One path of a layer: `image_path` (absolute, POSIX) from `source` on this machine, or
    from `data` (a regular file given as bytes)."""

    image_path: str
    source: Path | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class LayerBlob:
    path: Path  # the gzip file
    digest: str  # sha256:... of the gzip stream
    diff_id: str  # sha256:... of the tar
    size: int  # bytes of the gzip stream


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes what passes through and hands it on."""

    def __init__(self, sink) -> None:
        self.sink = sink
        self.hash = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.hash.update(data)
        self.count += len(data)
        self.sink.write(data)
        return len(data)

    def tell(self) -> int:
        return self.count


class _ParallelGzip(io.RawIOBase):
    """Writes what it is given as gzip members of `CHUNK` bytes, compressed in parallel."""

    def __init__(self, sink) -> None:
        self.sink = sink
        self.buffer = bytearray()
        self.pending: deque[Future] = deque()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.buffer += data
        while len(self.buffer) >= CHUNK:
            self.submit(bytes(self.buffer[:CHUNK]))
            del self.buffer[:CHUNK]
        return len(data)

    def submit(self, chunk: bytes) -> None:
        compress = gzip.compress if len(chunk) < SMALL_MEMBER else _gzip_compress
        self.pending.append(COMPRESSORS.submit(compress, chunk, GZIP_LEVEL, mtime=0))
        while len(self.pending) > 2 * (os.cpu_count() or 1) or (
            self.pending and self.pending[0].done()
        ):
            self.sink.write(self.pending.popleft().result())

    def close(self) -> None:
        if not self.closed:
            if self.buffer or not self.pending:
                self.submit(bytes(self.buffer))
                self.buffer.clear()
            while self.pending:
                self.sink.write(self.pending.popleft().result())
        super().close()


def with_parents(entries: list[Entry]) -> list[Entry]:
    """`entries` plus an entry for every parent folder not listed, sorted by path."""
    by_path = {entry.image_path: entry for entry in entries}
    for entry in entries:
        parent = posixpath.dirname(entry.image_path)
        while parent not in ("/", "") and parent not in by_path:
            by_path[parent] = Entry(parent)
            parent = posixpath.dirname(parent)
    return [by_path[path] for path in sorted(by_path)]


def tar_info(entry: Entry, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.image_path.lstrip("/"))
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.data is not None:
        info.type, info.mode, info.size = tarfile.REGTYPE, 0o644, len(entry.data)
        return info
    if entry.source is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        return info
    found = os.lstat(entry.source)
    if stat.S_ISLNK(found.st_mode):
        info.type, info.mode = tarfile.SYMTYPE, 0o777
        info.linkname = os.readlink(entry.source)
    elif stat.S_ISDIR(found.st_mode):
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.type, info.size = tarfile.REGTYPE, found.st_size
        info.mode = 0o755 if found.st_mode & 0o111 else 0o644
    return info


def write_layer(
    entries: list[Entry], out: Path, mtime: int = 0, consume: bool = False
) -> LayerBlob:
    """Write `entries` (parents added, sorted) as a gzip tar layer at `out`. With `consume`,
    each entry's source file (or symlink; not a folder) is removed once the layer is written:
    a staged tree's files are then gone before the kernel writes most of them to disk."""
    with out.open("wb") as raw:
        compressed = _Hashing(raw)
        zipped = _ParallelGzip(compressed)
        plain = _Hashing(zipped)
        with tarfile.TarFile(
            fileobj=plain, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK
        ) as tar:
            for entry in with_parents(entries):
                info = tar_info(entry, mtime)
                if entry.data is not None:
                    tar.addfile(info, io.BytesIO(entry.data))
                elif info.type == tarfile.REGTYPE:
                    assert entry.source is not None
                    with entry.source.open("rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
        zipped.close()
    if consume:
        for entry in entries:
            if entry.source is not None and not entry.source.is_dir():
                entry.source.unlink(missing_ok=True)
    return LayerBlob(
        path=out,
        digest="sha256:" + compressed.hash.hexdigest(),
        diff_id="sha256:" + plain.hash.hexdigest(),
        size=compressed.count,
    )

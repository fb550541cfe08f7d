"""Layers are deterministic: the same files give the same digest whatever the order, the
files' own times and owners, and the number of cores."""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile

from mlflow_steps.components.builder.backends.layered import tarlayer
from mlflow_steps.components.builder.backends.layered.tarlayer import Entry, write_layer


def tree(root):
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "big.bin").write_bytes(os.urandom(3 * tarlayer.CHUNK + 5))
    (root / "pkg" / "tool").write_text("#!/bin/sh\n")
    (root / "pkg" / "tool").chmod(0o775)
    (root / "pkg" / "mod.py").write_text("X = 1\n")
    (root / "pkg" / "mod.py").chmod(0o600)
    os.symlink("mod.py", root / "pkg" / "alias.py")
    return [
        Entry(f"/opt/env/lib/{name}", root / "pkg" / name)
        for name in ("big.bin", "tool", "mod.py", "alias.py")
    ] + [Entry("/opt/env/extra.pth", data=b"/opt/x\n")]


def test_same_files_same_digest_whatever_order_times_and_owners(tmp_path):
    entries = tree(tmp_path / "a")
    first = write_layer(entries, tmp_path / "one.tar.gz")
    os.utime(tmp_path / "a" / "pkg" / "mod.py", (1, 1))
    os.chown(tmp_path / "a" / "pkg" / "tool", 1234, 1234)
    second = write_layer(list(reversed(entries)), tmp_path / "two.tar.gz")
    assert first.digest == second.digest and first.diff_id == second.diff_id
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()
    assert first.size == (tmp_path / "one.tar.gz").stat().st_size
    data = (tmp_path / "one.tar.gz").read_bytes()
    assert first.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert first.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()


def test_entries_sorted_with_parents_fixed_owner_time_and_modes(tmp_path, monkeypatch):
    blob = write_layer(tree(tmp_path / "a"), tmp_path / "layer.tar.gz", mtime=1700000000)
    with tarfile.open(blob.path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names[:3] == ["opt", "opt/env", "opt/env/extra.pth"]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {
        (0, 0, "", "", 1700000000)
    }
    by_name = {m.name: m for m in members}
    assert by_name["opt/env/lib"].isdir() and by_name["opt/env/lib"].mode == 0o755
    assert by_name["opt/env/lib/tool"].mode == 0o755
    assert by_name["opt/env/lib/mod.py"].mode == 0o644
    assert by_name["opt/env/lib/alias.py"].issym()
    assert by_name["opt/env/lib/alias.py"].linkname == "mod.py"


def test_bytes_do_not_depend_on_the_number_of_compressing_threads(tmp_path, monkeypatch):
    entries = tree(tmp_path / "a")
    many = write_layer(entries, tmp_path / "many.tar.gz")
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(tarlayer, "COMPRESSORS", ThreadPoolExecutor(1))
    one = write_layer(entries, tmp_path / "one.tar.gz")
    assert one.digest == many.digest


def test_a_worker_process_writes_the_same_bytes(tmp_path):
    entries = tree(tmp_path / "a")
    here = write_layer(entries, tmp_path / "here.tar.gz")
    with tarlayer.LayerWriters() as writers:
        pool = writers.executor()
        there = pool.submit(write_layer, entries, tmp_path / "there.tar.gz").result()
    assert isinstance(pool, tarlayer.ProcessPoolExecutor)
    assert there == tarlayer.LayerBlob(tmp_path / "there.tar.gz", here.digest, here.diff_id,
                                       here.size)  # fmt: skip


# A caller whose main module writes layers when it is imported, with no `__main__` guard:
# multiprocessing's spawn imports that module in each worker, and the worker refuses to start.
UNGUARDED = """\
import sys
from pathlib import Path
from mlflow_steps.components.builder.backends.layered import tarlayer

with tarlayer.LayerWriters() as writers:
    pool = writers.executor()
    blob = pool.submit(tarlayer.write_layer, [tarlayer.Entry("/x", data=b"x")],
                       Path(sys.argv[1])).result()
print(type(pool).__name__, blob.digest)
"""


def test_an_unguarded_main_module_gets_threads_and_its_layer(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED)
    out = tmp_path / "x.tar.gz"
    done = subprocess.run([sys.executable, str(script), str(out)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = write_layer([Entry("/x", data=b"x")], tmp_path / "expected.tar.gz")
    assert done.stdout.split() == ["ThreadPoolExecutor", expected.digest]


def test_a_small_layer_is_compressed_by_zlib_so_every_build_writes_the_same_bytes(tmp_path):
    """The builder's own small layers (venv skeleton, runtime module, lock) are written in
    every build and must keep their digest: ISA-L once gave one 10 KiB tar two streams."""
    out = tmp_path / "layer.tar.gz"
    write_layer([Entry("/opt/x/pyvenv.cfg", data=b"home = /usr/bin\n")], out)
    written = out.read_bytes()
    assert written == gzip.compress(gzip.decompress(written), tarlayer.GZIP_LEVEL, mtime=0)

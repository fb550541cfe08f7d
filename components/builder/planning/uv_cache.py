"""The cache `uv pip compile` keeps between a builder's resolutions: wheel metadata only.

`$XDG_CACHE_HOME/mlflow-steps/uv-resolve` (else `~/.cache/...`), mode 0700 and this user's
(else it is not used), is uv's cache
(`UV_CACHE_DIR`) for `resolution.resolve`. What makes a resolution fresh is the index's
project pages (PEP 503 / 691): uv keeps them under `simple-v*` and reuses them as their HTTP
cache headers allow (PyPI's say ten minutes), so they are removed before every resolution, and
each one reads every project page from the index again, as a resolution with an empty cache
does. What stays is what does not change under a file's URL: each wheel's METADATA (uv reads
it from the index's PEP 658 file, else from the wheel itself, which costs most of a wheel's
download on an index without PEP 658), revalidated by uv as the index's headers say.

uv writes no credentials into its cache (a URL's user information is not kept; the
`test_the_resolution_cache_keeps_no_credential` test checks it). One resolution at a time uses
the folder (an exclusive `flock`); another one, meanwhile, resolves with a cache of its own
that is removed after it, as every resolution did before this cache existed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PAGES = "simple-v*"  # uv's bucket of project pages (simple-v28 in uv 0.13)


def cache_folder() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "mlflow-steps" / "uv-resolve"


def remove(folders: list[Path]) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def resolution_cache() -> Iterator[str | None]:
    """The folder for uv's `UV_CACHE_DIR`, held for this resolution alone, its project pages
    gone; None when another resolution holds it, it cannot be made, or it is not private: a
    symbolic link, another user's, or open to the group or others (what another user wrote
    there would steer the resolution). The caller then lets uv use a cache of its own in a
    temporary folder."""
    folder = cache_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        yield None
        return
    try:
        found = os.fstat(handle)
        if found.st_uid != os.geteuid() or found.st_mode & 0o077:
            yield None
            return
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield None
            return
        # Renamed away at once; removed while uv resolves (nothing else uses the folder).
        try:
            for pages in folder.glob(PAGES):
                pages.rename(folder / f"stale-{uuid.uuid4().hex}")
        except OSError:
            yield None
            return
        stale = list(folder.glob("stale-*"))  # with any a killed builder left
        remover = threading.Thread(target=remove, args=(stale,))
        remover.start()
        try:
            yield str(folder)
        finally:
            remover.join()
    finally:
        os.close(handle)  # the lock goes with it

"""The licences of a lock's distributions, read from their wheels' core metadata on the index.

Every build path writes the same bill of materials for the same lock and base (cold or with
every layer reused from the registry, per-package, engine-less, single-layer, platforms), so
the licences come from what every path has: the lock. For each distribution, its first wheel
by file name (a lock lists one per platform; their metadata is the same distribution's) is
read where the lock says it is (else, when that fails, as the same file on a configured
index's PEP 503 page: a lock made against PyPI, built from a mirror), without downloading it
whole, as pip and uv read metadata:

1. its PEP 658 / PEP 714 metadata file, `<wheel URL>.metadata`, when the index serves one;
2. else the wheel's `*.dist-info/METADATA` member, through HTTP range requests: the zip's
   central directory at the end of the file, then that member alone (RFC 9110 `Range`);
3. else, from an index that ignores `Range` (answers 200), the whole wheel when it is at most
   `WHOLE_LIMIT` bytes, its sha256 checked against the lock.

The answer depends only on the wheel's bytes, so each is read once per process (by sha256),
and a distribution layer's record in the registry's layer cache carries it for later builds
(`known`, `remember`): a bump reads the licences of the wheels it installs, not all 53.
A distribution with no wheel in the lock (an sdist only), with no URL, or whose wheel has no
readable METADATA gets no licence. A wheel no index serves (unreachable, 401, 403, 404 on the
wheel itself) is a StepError naming the distribution: a licence missing by accident would
change the document, and so the image's digest. The metadata is not checked against the
lock's sha256 (only a whole wheel is): a licence is information, not what is installed.

The index's credentials go only to an index's own origin (`host_install.index_credentials`);
no netrc, proxy or other ambient setting is read. Sources: PEP 658, PEP 714, PEP 427 (wheel
layout), core metadata 2.4, PEP 639.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import io
import json
import re
import struct
import threading
import time
import zipfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePosixPath
from typing import IO
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import requests

from ...problems import StepError
from ..oci.sbom import checked_choice, licence_of
from .indexes import IndexSettings, host_of, origin_of
from .resolution import Distribution, DistributionFile

CHUNK = 64 * 1024  # bytes asked for per range request, at least
METADATA_LIMIT = 8 << 20  # bytes of a METADATA read, at most (its headers come first)
WHOLE_LIMIT = 64 << 20  # the largest wheel read whole from an index that ignores Range
RANGE_LIMIT = 64 << 20  # bytes read through range requests per wheel, at most
ENTRIES_LIMIT = 100_000  # central directory entries of a wheel read for its METADATA
DIRECTORY_LIMIT = 16 << 20  # bytes of that central directory, at most
FETCHERS = 8  # wheels read at a time
ATTEMPTS = 3  # per request, on a connection error or a 429/5xx answer
_METADATA = re.compile(r"^[^/]+\.dist-info/METADATA$")
RECORDED_LIMIT = 1000  # licences one layer record may carry
_HREF = re.compile(r"""href=["']([^"']+)["']""", re.IGNORECASE)

_known: dict[str, list[dict] | None] = {}  # by wheel sha256, read in this process
_read_at: dict[str, str] = {}  # wheel sha256: `location` of the lock URL its METADATA was read at
_recorded: dict[tuple[str, str], list[dict] | None] = {}  # (sha256, location): from records
_lock = threading.Lock()
_ahead: list[threading.Thread] = []  # started by `read_ahead`


def read_ahead(distributions: Iterable[Distribution], index: IndexSettings) -> None:
    """Starts reading the distributions' licences in a thread of its own, while the build goes
    on (on a bump, while the layers are looked up and mounted); the build's own `licences` call
    waits for it, and reads again what it could not read, so that call raises its errors."""

    def read(wanted: list[Distribution]) -> None:
        # The build's own call reads again what failed here, and says why.
        with contextlib.suppress(Exception):
            licences(wanted, index, wait=False)

    thread = threading.Thread(target=read, args=(list(distributions),), daemon=True)
    thread.start()
    with _lock:
        _ahead.append(thread)


def location(url: str) -> str:
    """`url` without user information or fragment: what binds a recorded licence to a lock's
    file, and what a layer record may name (the query stays: some indexes pick the file by it;
    the lock in the image holds the same URL)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def known(wheels: Iterable[tuple[str, str]]) -> dict[str, dict]:
    """For a layer's record: `{sha256: {"at": location, "licences": choice}}` of the wheels
    (`(sha256, lock URL)`) whose licence this process read from that very URL, its METADATA in
    hand (`_read_at`); a licence read elsewhere (a configured index standing in for the lock's
    URL), from a wheel without readable metadata, or one `sbom.checked_choice` refuses (more
    than `sbom.NAMES_LIMIT` names) is not recorded."""
    with _lock:
        found = {
            sha: {"at": location(url), "licences": _known[sha]}
            for sha, url in wheels
            if sha in _known and _read_at.get(sha) == location(url)
        }
    kept = {}
    for sha, entry in found.items():
        with contextlib.suppress(ValueError):  # what `remember` would refuse is not recorded
            checked_choice(entry["licences"])
            kept[sha] = entry
    return kept


def remember(recorded: str, wheels: Iterable[tuple[str, str]]) -> bool:
    """Take the licences a layer's record carries (`known`'s answer as JSON, written by an
    earlier build) for the layer's own wheels (`(sha256, lock URL)`), so that they are not
    read from the index again. Each entry must name one of those wheels and hold a
    `sbom.checked_choice`, else nothing is taken (False) and the licences are read from the
    index as ever; an entry read at another URL than this lock's is passed over (another
    codeset's lock may name another host for the same file). Taken licences are looked up by
    (sha256, location) and never replace one read in this process."""
    expected = {sha: location(url) for sha, url in wheels}
    try:
        found = json.loads(recorded)
        if not isinstance(found, dict) or len(found) > RECORDED_LIMIT:
            return False
        taken = {}
        for sha, entry in found.items():
            if sha not in expected or not isinstance(entry, dict) or set(entry) != {
                "at", "licences"
            }:  # fmt: skip
                return False
            choice = checked_choice(entry["licences"])
            if entry["at"] == expected[sha]:
                taken[(sha, expected[sha])] = choice
    except Exception:  # a record is only a cache: any fault, and it is passed over
        return False
    with _lock:
        for key, choice in taken.items():
            _recorded.setdefault(key, choice)
    return True


def forget() -> None:
    """Forget every licence read or taken in this process (for tests)."""
    with _lock:
        _known.clear()
        _read_at.clear()
        _recorded.clear()


def licences(
    distributions: Iterable[Distribution], index: IndexSettings, wait: bool = True
) -> dict[str, list[dict]]:
    """`sbom.licence_of` of each distribution's wheel metadata, by the distribution's (PEP 503)
    name, the ones without a licence left out. Raises StepError (see the module doc). With
    `wait`, first waits for what `read_ahead` started."""
    while wait:
        with _lock:
            if not _ahead:
                break
            thread = _ahead.pop()
        thread.join()
    chosen = [(dist.name, first_wheel(dist)) for dist in distributions]
    wanted = [(name, wheel) for name, wheel in chosen if wheel is not None]
    with ThreadPoolExecutor(FETCHERS) as pool:
        found = pool.map(lambda item: licence_of_wheel(item[0], item[1], index), wanted)
        return {name: choice for (name, _), choice in zip(wanted, found) if choice}


def first_wheel(dist: Distribution) -> DistributionFile | None:
    """The distribution's wheel with an http(s) URL that comes first by file name, if any."""
    wheels = [f for f in dist.wheels if urlsplit(f.url).scheme in ("http", "https") and f.sha256]
    return min(wheels, key=lambda f: f.name) if wheels else None


def licence_of_wheel(name: str, wheel: DistributionFile, index: IndexSettings) -> list[dict] | None:
    """The wheel's licence: read in this process, else taken from a layer record for this
    sha256 at this URL (`remember`), else read now (the first answer kept)."""
    at = location(wheel.url)
    with _lock:
        if wheel.sha256 in _known:
            return _known[wheel.sha256]
        if (wheel.sha256, at) in _recorded:
            return _recorded[(wheel.sha256, at)]
    text, read_at_lock_url = metadata_text(name, wheel, index)
    choice = licence_of(text) if text is not None else None
    with _lock:
        # The first answer is kept, and with it where it was read: both from one thread (a lock
        # may list the same sha256 twice, at two URLs).
        if wheel.sha256 not in _known:
            _known[wheel.sha256] = choice
            if text is not None and read_at_lock_url:
                _read_at[wheel.sha256] = at
        return _known[wheel.sha256]


def metadata_text(
    name: str, wheel: DistributionFile, index: IndexSettings
) -> tuple[str | None, bool]:
    """(the wheel's METADATA, at most `METADATA_LIMIT` bytes, decoded as UTF-8, or None when
    the wheel has none to read; whether it was read at the lock's own URL): read at the lock's
    URL, else, when that fails (a lock made against PyPI, built from a mirror), at the same
    file on a configured index (`on_the_indexes`). Raises the first failure's StepError when
    none answers."""
    try:
        return metadata_at(wheel.url, name, wheel, index), True
    except StepError as error:
        for url in on_the_indexes(name, wheel, index):
            try:
                return metadata_at(url, name, wheel, index), False
            except StepError:
                continue
        raise error


def on_the_indexes(name: str, wheel: DistributionFile, index: IndexSettings) -> list[str]:
    """The URLs of the file `wheel.name` on the configured indexes' PEP 503 pages of `name`
    (their origins other than the lock URL's), its `#sha256=` the lock's when the page gives
    one; an index that does not answer is passed over."""
    from ..backends.layered.host_install import index_credentials, session

    found = []
    for base in (index.index_url, *index.extra_index_urls):
        if not base or origin_of(base) == origin_of(wheel.url):
            continue
        page = base.rstrip("/") + f"/{name}/"
        verify = host_of(page) not in index.trusted_hosts.split()
        try:
            with session() as http:
                auth = index_credentials(page, index)
                reply = http.get(page, auth=auth, timeout=60, verify=verify)
        except requests.RequestException:
            continue
        if reply.status_code != 200:
            continue
        for href in _HREF.findall(reply.text[:METADATA_LIMIT]):
            url, _, fragment = urljoin(page, html.unescape(href)).partition("#")
            if unquote(PurePosixPath(urlsplit(url).path).name) != wheel.name:
                continue
            if fragment.startswith("sha256=") and fragment[7:] != wheel.sha256:
                continue
            found.append(url)
    return found


def metadata_at(url: str, name: str, wheel: DistributionFile, index: IndexSettings) -> str | None:
    """`metadata_text` of the wheel at `url`."""
    # Imported here: host_install imports the installer, which the single-layer path needs not.
    from ..backends.layered.host_install import index_credentials, session

    url = url.split("#", 1)[0]
    what = f"{name}: {wheel.name}"
    fetch = Fetcher(
        url, index_credentials(url, index), host_of(url) not in index.trusted_hosts.split(), what
    )
    with session() as fetch.http:
        # PEP 658: the core metadata beside the wheel. An index without it answers 404.
        with fetch.get(url + ".metadata") as reply:
            if reply.status_code == 200:
                text = read_capped(reply, METADATA_LIMIT).decode("utf-8", "replace")
                if text.startswith("Metadata-Version:"):
                    return text
        with fetch.get(url, {"Range": f"bytes=-{CHUNK}"}) as reply:
            if reply.status_code == 206:
                remote: io.IOBase = RangeFile(fetch, reply)
            elif reply.status_code == 200:
                whole = read_capped(reply, WHOLE_LIMIT + 1)
                if len(whole) > WHOLE_LIMIT:
                    return None
                if hashlib.sha256(whole).hexdigest() != wheel.sha256:
                    raise StepError(f"{what} does not match the lock's sha256")
                remote = io.BytesIO(whole)
            else:
                raise StepError(f"{what}: the index answered {reply.status_code} for the wheel")
        try:
            if not central_directory_fits(remote):
                return None  # a zip whose entry list alone would fill the memory: no licence
            with zipfile.ZipFile(remote) as archive:
                members = [i for i in archive.infolist() if _METADATA.match(i.filename)]
                if len(members) != 1:
                    return None
                with archive.open(members[0]) as member:
                    return member.read(METADATA_LIMIT).decode("utf-8", "replace")
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError,
                ValueError, TooLarge):  # fmt: skip
            return None  # not a readable wheel: no licence (the same answer every time)


class TooLarge(Exception):
    pass


def central_directory_fits(remote: io.IOBase | IO[bytes]) -> bool:
    """Whether the zip's end records (APPNOTE 6.3.10 4.3.16, and 4.3.14/4.3.15 for ZIP64) give
    at most `ENTRIES_LIMIT` entries in a central directory of at most `DIRECTORY_LIMIT` bytes:
    `zipfile` keeps about 320 bytes per entry, and a hostile wheel's directory may list
    millions. False when no end record is found (then no zip either)."""
    size = remote.seek(0, io.SEEK_END)
    start = max(0, size - (22 + 0xFFFF))  # the end record, then a comment of at most 64 KiB
    remote.seek(start)
    tail = remote.read(size - start)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return False
    entries, directory = struct.unpack_from("<HI", tail, at + 10)
    if entries == 0xFFFF or directory == 0xFFFFFFFF:  # ZIP64: its own end record says
        locator = at - 20
        if locator < 0 or tail[locator : locator + 4] != b"PK\x06\x07":
            return False
        (record_at,) = struct.unpack_from("<Q", tail, locator + 8)
        remote.seek(record_at)
        record = remote.read(56)
        if len(record) < 56 or record[:4] != b"PK\x06\x06":
            return False
        entries, directory = struct.unpack_from("<QQ", record, 32)
    return entries <= ENTRIES_LIMIT and directory <= DIRECTORY_LIMIT


class Fetcher:
    """GETs of one URL with its credentials, retried on a connection error or a 429/5xx."""

    def __init__(self, url: str, auth, verify: bool, what: str) -> None:
        self.url, self.auth, self.verify, self.what = url, auth, verify, what
        self.http: requests.Session | None = None

    def get(self, url: str, headers: dict[str, str] | None = None) -> requests.Response:
        assert self.http is not None
        for attempt in range(ATTEMPTS):
            try:
                reply = self.http.get(url, headers=headers, auth=self.auth, stream=True,
                                      timeout=60, verify=self.verify)  # fmt: skip
            except requests.RequestException as error:
                problem = type(error).__name__
            else:
                if reply.status_code != 429 and reply.status_code < 500:
                    return reply
                problem = f"HTTP {reply.status_code}"
                reply.close()
            time.sleep(0.2 * 2**attempt)
        raise StepError(
            f"{self.what}: its metadata could not be read for the bill of materials ({problem}); "
            "the index that serves the lock's wheels must be reachable from the builder"
        )


def read_capped(reply: requests.Response, limit: int) -> bytes:
    data = bytearray()
    for chunk in reply.iter_content(CHUNK):
        data += chunk
        if len(data) >= limit:
            return bytes(data[:limit])
    return bytes(data)


CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)$")


class RangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file through range requests (what `zipfile`
    needs), starting from the suffix-range answer `first`; at most `RANGE_LIMIT` bytes read."""

    def __init__(self, fetch: Fetcher, first: requests.Response) -> None:
        found = CONTENT_RANGE.match(first.headers.get("Content-Range", ""))
        if not found:
            raise StepError(f"{fetch.what}: the index's range answer has no Content-Range")
        start, self.size = int(found[1]), int(found[3])
        self.fetch, self.position, self.spent = fetch, 0, 0
        self.pieces: list[tuple[int, bytes]] = [(start, read_capped(first, CHUNK + 1))]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.position, 2: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self.position + size)
        if end <= self.position:
            return b""
        for start, data in self.pieces:
            if start <= self.position and end <= start + len(data):
                out = data[self.position - start : end - start]
                self.position = end
                return out
        stop = min(self.size, max(end, self.position + CHUNK))
        self.spent += stop - self.position
        if self.spent > RANGE_LIMIT:
            raise TooLarge()
        with self.fetch.get(
            self.fetch.url, {"Range": f"bytes={self.position}-{stop - 1}"}
        ) as reply:
            found = CONTENT_RANGE.match(reply.headers.get("Content-Range", ""))
            if reply.status_code != 206 or not found or int(found[1]) != self.position:
                raise StepError(
                    f"{self.fetch.what}: the index answered {reply.status_code} to a range request"
                )
            data = read_capped(reply, stop - self.position)
        self.pieces.append((self.position, data))
        out = data[: end - self.position]
        self.position += len(out)
        return out

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

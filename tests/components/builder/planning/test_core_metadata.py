"""The licences of a lock's wheels, read from real indexes: pypiserver (with htpasswd; no PEP 658
files, `Range` honoured) and Python's own http.server (no `Range`: whole wheels), which also
serves a PEP 658 `.metadata` file. The expected licences are computed from the wheel files."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename

from mlflow_steps.components.builder.oci import sbom
from mlflow_steps.components.builder.oci.sbom import LICENCE_LIMIT, licence_of
from mlflow_steps.components.builder.planning import core_metadata
from mlflow_steps.components.builder.planning.indexes import IndexSettings
from mlflow_steps.components.builder.planning.resolution import Distribution, DistributionFile
from mlflow_steps.components.problems import StepError
from tests.support import images, packages, services
from tests.support.require import require_tools

# A hostile wheel's licence fields: 1 MiB, with control and format characters.
HOSTILE = "GPL\x00\x01\x1b[31m\u202e\x7f" + "A" * (1 << 20)
HOSTILE_LINES = (
    f"License-Expression: {HOSTILE}\nLicense: {HOSTILE}\nClassifier: License :: {HOSTILE}\n"
)
# Real wheels of the test wheelhouse (numpy's is large: only its end and METADATA are read).
REAL = ("six-1.16.0-", "packaging-", "numpy-")


def made_wheels(folder: Path) -> list[Path]:
    """Wheels written here, one per licence source, and the hostile one."""
    return [
        packages.wheel(folder, "lic-spdx", "1.0", "License-Expression: apache-2.0 OR mit\n"),
        packages.wheel(folder, "lic-field", "1.0", "License: BSD-3-Clause\n"),
        packages.wheel(
            folder, "lic-classified", "1.0", "Classifier: License :: OSI Approved :: MIT License\n"
        ),
        packages.wheel(folder, "lic-none", "1.0"),
        packages.wheel(folder, "lic-hostile", "1.0", HOSTILE_LINES),
    ]


def expected_licences(wheels: list[Path]) -> dict[str, list[dict]]:
    """`licence_of` each wheel file's own METADATA member, by distribution name."""
    found = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            (member,) = [
                n for n in archive.namelist() if re.match(r"[^/]+\.dist-info/METADATA$", n)
            ]
            choice = licence_of(archive.read(member).decode())
        if choice:
            found[str(parse_wheel_filename(wheel.name)[0])] = choice
    return found


def lock_of(wheels: list[Path], url: str) -> list[Distribution]:
    """The distributions a lock would list for `wheels`, each wheel at `url` + its name."""
    dists = []
    for wheel in wheels:
        name, version, _, _ = parse_wheel_filename(wheel.name)
        sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
        files = (DistributionFile(wheel.name, url + wheel.name, sha256),)
        dists.append(Distribution(canonicalize_name(name), str(version), "", files))
    return dists


@pytest.fixture
def wheelhouse(tmp_path) -> list[Path]:
    folder = tmp_path / "wheels"
    wheels = made_wheels(folder)
    for prefix in REAL:
        (real,) = sorted(images.wheelhouse().glob(f"{prefix}*.whl"))[:1]
        os.link(real, folder / real.name)
        wheels.append(folder / real.name)
    return wheels


def test_range_reads_through_an_index_with_credentials_give_each_wheels_own_licence(
    wheelhouse, tmp_path
):
    require_tools("htpasswd")
    users = {"alice": "al1ce-token"}
    index = services.start_index(wheelhouse[0].parent, tmp_path / "index", users=users)
    try:
        url = index.extra["url"]
        settings = IndexSettings(
            index_url=url,
            trusted_hosts="127.0.0.1",
            credentials={f"http://{index.host}": ("alice", users["alice"])},
        )
        dists = lock_of(wheelhouse, f"http://{index.host}/packages/")
        core_metadata._known.clear()
        found = core_metadata.licences(dists, settings)
        assert found == expected_licences(wheelhouse)
        assert found["lic-spdx"] == [{"expression": "Apache-2.0 OR MIT"}]
        assert found["lic-field"] == [{"license": {"name": "BSD-3-Clause"}}]
        assert found["lic-classified"] == [{"license": {"name": "MIT License"}}]
        assert "lic-none" not in found and found["six"] == [{"license": {"name": "MIT"}}]
        (hostile,) = found["lic-hostile"]
        assert len(hostile["license"]["name"]) == LICENCE_LIMIT
        assert "\x00" not in hostile["license"]["name"]
        # A lock whose URLs no longer answer (made against another index): the same files on
        # the configured index's pages are read instead.
        closed = f"http://127.0.0.1:{services.free_port()}/packages/"
        core_metadata._known.clear()
        assert core_metadata.licences(lock_of(wheelhouse, closed), settings) == found
        # Without credentials the index answers 401: an error naming the distribution.
        core_metadata._known.clear()
        with pytest.raises(StepError, match=r"six: six-1\.16\.0-py2\.py3-none-any\.whl: .*401"):
            core_metadata.licences([d for d in dists if d.name == "six"], IndexSettings(url))
    finally:
        index.stop()


class Recording(SimpleHTTPRequestHandler):
    """http.server's file handler (no `Range`: every answer is the whole file), its request
    paths kept."""

    seen: ClassVar[list[str]] = []

    def do_GET(self):
        self.seen.append(self.path)
        super().do_GET()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def plain_server(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    Recording.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Recording, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_pep_658_file_is_read_first_and_an_index_without_range_serves_whole_wheels(
    plain_server,
):
    folder, url = plain_server
    spdx, field = made_wheels(folder)[:2]
    # PEP 658: the metadata file beside the wheel, read instead of the wheel.
    (folder / f"{spdx.name}.metadata").write_bytes(
        zipfile.ZipFile(spdx).read("lic_spdx-1.0.dist-info/METADATA")
    )
    core_metadata._known.clear()
    found = core_metadata.licences(lock_of([spdx, field], url), IndexSettings(url))
    assert found == expected_licences([spdx, field])
    assert f"/{spdx.name}" not in Recording.seen and f"/{spdx.name}.metadata" in Recording.seen
    assert f"/{field.name}" in Recording.seen  # read whole: the server ignores Range


def test_a_whole_wheel_that_does_not_match_the_lock_is_refused(plain_server):
    folder, url = plain_server
    (wheel,) = made_wheels(folder)[1:2]
    (dist,) = lock_of([wheel], url)
    wrong = DistributionFile(wheel.name, url + wheel.name, "0" * 64)
    core_metadata._known.clear()
    with pytest.raises(StepError, match="does not match the lock's sha256"):
        core_metadata.licences([Distribution(dist.name, dist.version, "", (wrong,))],
                               IndexSettings(url))  # fmt: skip


def test_a_wheel_the_index_lacks_or_an_index_down_is_an_error_naming_the_distribution(
    plain_server,
):
    _, url = plain_server
    missing = DistributionFile("gone-1.0-py3-none-any.whl", url + "gone-1.0-py3-none-any.whl",
                               "1" * 64)  # fmt: skip
    core_metadata._known.clear()
    with pytest.raises(StepError, match=r"^gone: gone-1\.0-py3-none-any\.whl: .*404"):
        core_metadata.licences([Distribution("gone", "1.0", "", (missing,))], IndexSettings(url))
    closed = f"http://127.0.0.1:{services.free_port()}/"
    down = DistributionFile(missing.name, closed + missing.name, "2" * 64)
    with pytest.raises(StepError, match=r"^gone: .*ConnectionError.*reachable"):
        core_metadata.licences([Distribution("gone", "1.0", "", (down,))], IndexSettings(closed))


def test_a_distribution_without_a_wheel_url_gets_no_licence_and_no_request():
    sdist = DistributionFile("six-1.16.0.tar.gz", "https://example.invalid/six-1.16.0.tar.gz",
                             "3" * 64)  # fmt: skip
    no_url = DistributionFile("six-1.16.0-py3-none-any.whl", "", "4" * 64)
    dists = [Distribution("six", "1.16.0", "", (sdist, no_url))]
    assert core_metadata.licences(dists, IndexSettings()) == {}


def test_licences_read_ahead_are_read_once_and_the_builds_own_call_raises_what_failed(
    plain_server,
):
    """`read_ahead` reads while the build goes on; the build's `licences` call waits for it and
    asks the index nothing more, and a wheel the read ahead could not read is read again by
    that call, which names it."""
    folder, url = plain_server
    wheels = made_wheels(folder)[:3]
    dists = lock_of(wheels, url)
    core_metadata._known.clear()
    core_metadata.read_ahead(dists, IndexSettings(url))
    assert core_metadata.licences(dists, IndexSettings(url)) == expected_licences(wheels)
    assert sorted(Recording.seen) == sorted(
        path for wheel in wheels for path in (f"/{wheel.name}.metadata", f"/{wheel.name}")
    )  # each wheel once (http.server has no PEP 658 file here: 404, then the whole wheel)
    missing = DistributionFile("gone-1.0-py3-none-any.whl", url + "gone-1.0-py3-none-any.whl",
                               "1" * 64)  # fmt: skip
    gone = [Distribution("gone", "1.0", "", (missing,))]
    core_metadata.read_ahead(gone, IndexSettings(url))
    with pytest.raises(StepError, match=r"^gone: gone-1\.0-py3-none-any\.whl: .*404"):
        core_metadata.licences(gone, IndexSettings(url))


def test_a_wheel_whose_entry_list_is_too_long_gets_no_licence_before_zipfile_reads_it(
    plain_server, monkeypatch
):
    """zipfile keeps ~320 bytes per central-directory entry, so a hostile wheel listing
    millions would fill the memory: the end record is read first, and a directory over the
    limits means no licence (the limit lowered here to 10 entries to keep the test small)."""
    folder, url = plain_server
    (wheel,) = made_wheels(folder)[1:2]
    with zipfile.ZipFile(wheel, "a") as archive:
        for n in range(12):
            archive.writestr(f"lic_field/pad{n}.py", "")
    monkeypatch.setattr(core_metadata, "ENTRIES_LIMIT", 10)
    core_metadata._known.clear()
    assert core_metadata.licences(lock_of([wheel], url), IndexSettings(url)) == {}
    with open(wheel, "rb") as handle:
        assert not core_metadata.central_directory_fits(handle)
    monkeypatch.setattr(core_metadata, "ENTRIES_LIMIT", 100)
    with open(wheel, "rb") as handle:
        assert core_metadata.central_directory_fits(handle)
    core_metadata._known.clear()
    assert core_metadata.licences(lock_of([wheel], url), IndexSettings(url)) == {
        "lic-field": [{"license": {"name": "BSD-3-Clause"}}]
    }


def test_licences_a_layer_record_carries_are_taken_and_not_read_again(plain_server):
    """A reused layer's record carries the licences its wheels gave (`known`, as JSON, bound to
    the lock URL each was read at): taken by `remember` for a lock naming the same files at
    the same URLs, the bill of materials asks the index nothing for them."""
    folder, url = plain_server
    wheels = made_wheels(folder)[:3]
    dists = lock_of(wheels, url)
    own = [(dist.files[0].sha256, dist.files[0].url) for dist in dists]
    core_metadata.forget()
    try:
        expected = core_metadata.licences(dists, IndexSettings(url))
        recorded = json.dumps(core_metadata.known(own))
        assert json.loads(recorded) == {
            sha: {"at": wheel_url, "licences": expected.get(dist.name)}
            for (sha, wheel_url), dist in zip(own, dists)
        }
        core_metadata.forget()
        Recording.seen = []
        assert core_metadata.remember(recorded, own)
        assert core_metadata.licences(dists, IndexSettings(url)) == expected
        assert Recording.seen == []
    finally:
        core_metadata.forget()


def test_a_recorded_licence_is_taken_only_for_the_same_file_at_the_same_url(plain_server):
    """Another codeset's lock may name the same file (sha256) on a host of its own, which
    serves any METADATA it likes: its build's record binds the licence to that URL, and a lock
    naming another URL reads its own."""
    folder, url = plain_server
    (wheel,) = made_wheels(folder)[:1]
    (dist,) = lock_of([wheel], url)
    sha = dist.files[0].sha256
    elsewhere = f"http://127.0.0.1:9/{wheel.name}"
    lie = json.dumps({sha: {"at": elsewhere, "licences": [{"license": {"name": "Public Domain"}}]}})
    core_metadata.forget()
    try:
        assert core_metadata.remember(lie, [(sha, dist.files[0].url)])  # well-formed, not taken
        Recording.seen = []
        assert core_metadata.licences([dist], IndexSettings(url)) == expected_licences([wheel])
        assert Recording.seen  # read from this lock's own URL
    finally:
        core_metadata.forget()


A = "a" * 64
MIT = [{"license": {"name": "MIT"}}]


@pytest.mark.parametrize(
    "recorded",
    ["not json", "[]", json.dumps({A: None}), json.dumps({"b" * 64: {"at": "x", "licences": None}}),
     json.dumps({A: {"at": "http://h/a.whl", "licences": [{"license": {"name": "MIT\nEvil"}}]}}),
     json.dumps({A: {"at": "http://h/a.whl", "licences": [{"expression": "MIT"}] * 2}}),
     json.dumps({A: {"at": "http://h/a.whl", "licences": MIT, "more": 1}}),
     json.dumps({f"{n:064x}": None for n in range(core_metadata.RECORDED_LIMIT + 1)}),
     '{"' + A + '": {"at": "http://h/a.whl", "licences": ' + "[" * 100_000 + "]" * 100_000 + "}}"],
)  # fmt: skip
def test_a_record_whose_licences_are_not_the_builders_own_is_passed_over(recorded):
    """Malformed, for a wheel not in the layer (b...), or not a choice `licence_of` writes."""
    core_metadata.forget()
    assert core_metadata.remember(recorded, [(A, "http://h/a.whl")]) is False
    assert core_metadata._recorded == {}


def test_a_recorded_licence_never_replaces_one_read_here():
    core_metadata.forget()
    try:
        core_metadata._known[A] = MIT
        told = {A: {"at": "http://h/a.whl", "licences": [{"license": {"name": "BSD"}}]}}
        assert core_metadata.remember(json.dumps(told), [(A, "http://h/a.whl")])
        wheel = DistributionFile("a-1.0-py3-none-any.whl", "http://h/a.whl", A)
        assert core_metadata.licence_of_wheel("a", wheel, IndexSettings()) == MIT
    finally:
        core_metadata.forget()


def test_location_drops_user_information_and_fragment_and_keeps_the_query():
    url = "https://user:t0ken@nexus.example:8443/service/download?repository=pypi&name=a.whl#x"
    assert core_metadata.location(url) == (
        "https://nexus.example:8443/service/download?repository=pypi&name=a.whl"
    )
    other = "https://nexus.example:8443/service/download?repository=evil&name=a.whl"
    assert core_metadata.location(other) != core_metadata.location(url)


def test_a_licence_and_where_it_was_read_are_kept_from_the_same_answer(monkeypatch):
    """A lock may list one sha256 twice: at a decoy URL whose server answers garbage (no
    licence, nothing recorded) and at the real one. When both reads run at once and the decoy's
    answer is kept, the real URL must not be recorded with the decoy's answer."""
    real, decoy = "https://files.example/a-1.0-py3-none-any.whl", "https://evil.example/a.whl"
    both, decoy_kept = threading.Barrier(2), threading.Event()
    text = "Metadata-Version: 2.1\nName: a\nVersion: 1.0\nLicense-Expression: MIT\n"

    def answer(name, wheel, index):
        both.wait(5)
        if wheel.url == decoy:
            return None, True  # an unreadable wheel: no METADATA
        assert decoy_kept.wait(5)
        return text, True

    monkeypatch.setattr(core_metadata, "metadata_text", answer)
    core_metadata.forget()
    try:

        def read(url: str) -> None:
            core_metadata.licence_of_wheel("a", DistributionFile("a.whl", url, A), IndexSettings())
            if url == decoy:
                decoy_kept.set()

        threads = [threading.Thread(target=read, args=(url,)) for url in (decoy, real)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert core_metadata._known[A] is None
        assert core_metadata.known([(A, real)]) == {}
    finally:
        core_metadata.forget()


def test_a_choice_remember_would_refuse_is_not_recorded():
    names = [{"license": {"name": f"L{n:03}"}} for n in range(sbom.NAMES_LIMIT + 1)]
    core_metadata.forget()
    try:
        core_metadata._known[A], core_metadata._read_at[A] = names, "http://h/a.whl"
        assert core_metadata.known([(A, "http://h/a.whl")]) == {}
    finally:
        core_metadata.forget()

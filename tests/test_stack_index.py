"""The local stack's package index (mlflow_steps.stack.index_app over pypiserver, served by
gunicorn, real): a project page carries each wheel's sha256, kept between requests, and a
wheel replaced under the same name is listed with its new digest (at once; with pypiserver's
`cache` extra installed, once its watchdog has seen the write and cleared its listing)."""

from __future__ import annotations

import hashlib
import os
import re
import time
import zipfile

import requests

from mlflow_steps.stack import services


def wheel(path, body: str) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("demo_pkg/__init__.py", body)
        archive.writestr(
            "demo_pkg-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n",
        )
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listed_digest(url: str) -> str:
    page = requests.get(url + "demo-pkg/", timeout=10)
    assert page.status_code == 200, page.text
    return re.search(r"#sha256=([0-9a-f]{64})", page.text)[1]


def listed_within(url: str, digest: str, seconds: float = 15.0) -> str:
    """The listed digest once it is `digest`, or what is listed after `seconds`."""
    deadline = time.monotonic() + seconds
    while (listed := listed_digest(url)) != digest and time.monotonic() < deadline:
        time.sleep(0.1)
    return listed


def test_a_project_page_lists_each_wheels_current_digest(tmp_path):
    house = tmp_path / "wheelhouse"
    house.mkdir()
    path = house / "demo_pkg-1.0-py3-none-any.whl"
    first = wheel(path, "A = 1\n")
    index = services.start_index(house, tmp_path / "index")
    try:
        url = index.extra["url"]
        assert listed_digest(url) == first
        assert listed_digest(url) == first  # kept: the same answer again
        second = wheel(path, "A = 2  # another build of the same version\n")
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert second != first and listed_within(url, second) == second
    finally:
        index.stop()

"""The local stack's package index (mlflow_steps.stack.index_app over pypiserver, served by
gunicorn, real): a project page carries each wheel's sha256, kept between requests, and a
wheel replaced under the same name is listed with its new digest (at once; with pypiserver's
`cache` extra installed, once its watchdog has seen the write and cleared its listing). The
wheelhouse's listing is kept while its folders are unchanged and settled (in process)."""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import time
import zipfile

import pytest
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


def test_a_wheel_added_while_served_is_listed_at_once(tmp_path):
    house = tmp_path / "wheelhouse"
    house.mkdir()
    wheel(house / "demo_pkg-1.0-py3-none-any.whl", "A = 1\n")
    os.utime(house, (time.time() - 60, time.time() - 60))  # settled: its listing is kept
    index = services.start_index(house, tmp_path / "index")
    try:
        url = index.extra["url"]
        page = requests.get(url + "demo-pkg/", timeout=10).text
        assert "demo_pkg-1.0-" in page and "demo_pkg-2.0-" not in page
        added = wheel(house / "demo_pkg-2.0-py3-none-any.whl", "A = 2\n")
        page = requests.get(url + "demo-pkg/", timeout=10).text
        assert f"demo_pkg-2.0-py3-none-any.whl#sha256={added}" in page
    finally:
        index.stop()


@pytest.fixture
def index_app(tmp_path, monkeypatch):
    """The module, imported afresh over an empty wheelhouse at tmp_path/wheelhouse."""
    (tmp_path / "wheelhouse").mkdir()
    monkeypatch.setenv("MLFLOW_STEPS_WHEELHOUSE", str(tmp_path / "wheelhouse"))
    monkeypatch.delenv("MLFLOW_STEPS_INDEX_HTPASSWD", raising=False)
    from mlflow_steps.stack import index_app

    return importlib.reload(index_app)


def counting_walks(module, monkeypatch) -> list:
    walks = []
    walked = module._walked
    monkeypatch.setattr(module, "_walked", lambda: walks.append(1) or walked())
    return walks


def test_the_listing_is_kept_until_a_folder_changes(index_app, tmp_path, monkeypatch):
    house = tmp_path / "wheelhouse"
    wheel(house / "demo_pkg-1.0-py3-none-any.whl", "A = 1\n")
    os.utime(house, (time.time() - 60, time.time() - 60))
    walks = counting_walks(index_app, monkeypatch)
    assert [p.relfn for p in index_app.listed()] == ["demo_pkg-1.0-py3-none-any.whl"]
    assert [p.relfn for p in index_app.listed()] == ["demo_pkg-1.0-py3-none-any.whl"]
    assert len(walks) == 1
    (house / "sub").mkdir()
    wheel(house / "sub" / "demo_pkg-2.0-py3-none-any.whl", "A = 2\n")
    assert sorted(p.relfn_unix for p in index_app.listed()) == [
        "demo_pkg-1.0-py3-none-any.whl",
        "sub/demo_pkg-2.0-py3-none-any.whl",
    ]
    assert len(walks) == 2


def test_a_folder_changed_within_the_settling_time_is_walked_every_time(
    index_app, tmp_path, monkeypatch
):
    wheel(tmp_path / "wheelhouse" / "demo_pkg-1.0-py3-none-any.whl", "A = 1\n")
    walks = counting_walks(index_app, monkeypatch)
    for _ in range(3):
        assert [p.relfn for p in index_app.listed()] == ["demo_pkg-1.0-py3-none-any.whl"]
    assert len(walks) == 3

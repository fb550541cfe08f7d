"""The cache `resolve` keeps between resolutions (`uv_cache`), against a real PEP 503 index
served over HTTP on 127.0.0.1 (the standard library's server: pypiserver sends no cache
headers, and this one must send PyPI's `Cache-Control: max-age=600` on its pages), with real
wheels of the test wheelhouse and the real uv."""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mlflow_steps.components.builder.planning import uv_cache
from mlflow_steps.components.builder.planning.resolution import resolve
from tests.support import images
from tests.support.require import require_root

PYTHON = "{}.{}".format(*sys.version_info[:2])
SECRET = "s3cret-resolve-pass"


class Index(ThreadingHTTPServer):
    """/simple/six/ lists `self.wheels` (a page uv may keep for ten minutes); /files/NAME
    serves a wheel. `self.seen`: the paths asked for."""

    def __init__(self, wheelhouse: Path) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.wheelhouse = wheelhouse
        self.wheels: list[str] = []
        self.seen: list[str] = []

    @property
    def url(self) -> str:
        return f"http://alice:{SECRET}@127.0.0.1:{self.server_address[1]}/simple/"


class Handler(BaseHTTPRequestHandler):
    server: Index

    def do_HEAD(self) -> None:
        self.do_GET(body=False)

    def do_GET(self, body: bool = True) -> None:
        self.server.seen.append(f"{self.command} {self.path}")
        self.body = body
        if self.path.rstrip("/") == "/simple/six":
            links = "".join(
                f'<a href="/files/{name}#sha256={self.digest(name)}">{name}</a>\n'
                for name in self.server.wheels
            )
            self.answer(f"<html><body>\n{links}</body></html>".encode(), "text/html")
        elif self.path.startswith("/files/") and self.path[7:] in self.server.wheels:
            self.answer((self.server.wheelhouse / self.path[7:]).read_bytes(), "binary/octet")
        else:
            self.send_error(404)

    def digest(self, name: str) -> str:
        return hashlib.sha256((self.server.wheelhouse / name).read_bytes()).hexdigest()

    def answer(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=600, public")
        self.end_headers()
        if self.body:
            self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def index():
    server = Index(images.wheelhouse())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def six_version(index: Index) -> str:
    found = resolve(["six"], PYTHON, {"PIP_INDEX_URL": index.url}, {})
    (six,) = found.distributions
    return six.version


def test_a_release_the_index_lists_now_is_resolved_though_its_old_page_was_fresh(
    index, tmp_path, monkeypatch
):
    """The index's page said max-age=600; it lists a new release a moment later: the next
    resolution takes it, as one with an empty cache does. The wheel metadata read the first
    time is not fetched again; no file in the cache holds the index's password."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    index.wheels = ["six-1.16.0-py2.py3-none-any.whl"]
    assert six_version(index) == "1.16.0"
    index.wheels.append("six-1.17.0-py2.py3-none-any.whl")
    asked = len(index.seen)
    assert six_version(index) == "1.17.0"
    assert "GET /files/six-1.16.0-py2.py3-none-any.whl" in index.seen[:asked]
    assert "GET /files/six-1.16.0-py2.py3-none-any.whl" not in index.seen[asked:]
    folder = uv_cache.cache_folder()
    assert any(folder.glob("wheels-v*")) and (folder.stat().st_mode & 0o077) == 0
    for path in folder.rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path


def test_a_resolution_beside_one_that_holds_the_cache_uses_a_cache_of_its_own(
    index, tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    index.wheels = ["six-1.17.0-py2.py3-none-any.whl"]
    with uv_cache.resolution_cache() as held:
        assert held == str(uv_cache.cache_folder())
        with uv_cache.resolution_cache() as other:
            assert other is None
        assert six_version(index) == "1.17.0"  # resolved meanwhile, with a cache of its own
    assert not any(uv_cache.cache_folder().glob("wheels-v*"))


@pytest.mark.parametrize("made", ["open to others", "another user's", "a symbolic link"])
def test_a_cache_folder_that_is_not_private_is_not_used(made, tmp_path, monkeypatch):
    """What another user could write into the cache would steer resolutions: such a folder is
    left alone, and the resolution gets a cache of its own (attack review)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = uv_cache.cache_folder()
    folder.parent.mkdir(parents=True)
    if made == "a symbolic link":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        folder.symlink_to(tmp_path / "elsewhere")
    else:
        folder.mkdir(mode=0o700)
        if made == "open to others":
            folder.chmod(0o777)
        else:
            require_root()
            os.chown(folder, 65532, 65532)
    with uv_cache.resolution_cache() as used:
        assert used is None
    folder.unlink() if folder.is_symlink() else folder.rmdir()
    with uv_cache.resolution_cache() as used:  # made afresh: this user's, 0700
        assert used == str(folder)

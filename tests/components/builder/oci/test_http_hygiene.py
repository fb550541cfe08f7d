"""Credentials go only to the origin that asked for them, and none is taken from the
environment. Two small http.server registries on 127.0.0.1 record every request (a real
registry cannot be told to answer an upload with a Location on another host), and a ~/.netrc
`default` entry is put where requests would read it (HOME and NETRC pointing at temp files)."""

from __future__ import annotations

import base64
import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlflow_steps.components.builder.backends.layered.host_install import index_credentials
from mlflow_steps.components.builder.oci.registry import RegistryClient
from mlflow_steps.components.builder.oci.registry_push import RegistryWriter
from mlflow_steps.components.builder.planning import core_metadata
from mlflow_steps.components.builder.planning.indexes import IndexSettings, origin_of
from mlflow_steps.components.builder.planning.resolution import (
    Distribution,
    DistributionFile,
    read_pylock,
)
from mlflow_steps.components.problems import StepError
from tests.support import services

PASSWORD = "push-pa55word"
NETRC_PASSWORD = "netrc-default-pa55"


class Recorder:
    """A registry-shaped server: Basic auth required when `auth`; an upload POST answers 202
    with `location` (another origin's URL when set); every request's method, path and
    headers are kept in `seen`."""

    def __init__(self, auth: bool) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.location = ""
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                recorder.seen.append((self.command, self.path, dict(self.headers)))
                if auth and "Authorization" not in self.headers:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="r"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.command == "POST":
                    self.send_response(202)
                    self.send_header("Location", recorder.location or "/v2/r/blobs/uploads/u1")
                elif self.command == "PUT":
                    self.send_response(201)
                else:
                    self.send_response(200)
                    self.send_header("Docker-Content-Digest", "sha256:" + "a" * 64)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers():
    registry, other = Recorder(auth=True), Recorder(auth=False)
    yield registry, other
    registry.stop()
    other.stop()


@pytest.fixture
def ambient_netrc(tmp_path, monkeypatch):
    """A netrc `default` entry where requests looks (HOME/.netrc and $NETRC), and an empty
    docker config, so the registry client has no credentials of its own."""
    netrc = tmp_path / ".netrc"
    netrc.write_text(f"default login eve password {NETRC_PASSWORD}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
    return netrc


def headers_text(seen) -> str:
    return "\n".join(f"{k}: {v}" for _, _, headers in seen for k, v in headers.items())


def test_an_upload_location_on_another_origin_gets_no_credentials(servers):
    """Issue 23 item 7: the registry answers the upload POST with a Location on another host;
    the PUT goes there without the push credentials (bytes and file bodies alike)."""
    registry, other = servers
    registry.location = f"http://{other.host}/upload/u1"
    client = RegistryClient(registry.host, insecure=True, credentials=("alice", PASSWORD))
    writer = RegistryWriter(client)
    writer.upload("r", "sha256:" + "b" * 64, b"layer bytes")
    token = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert any(h.get("Authorization") == f"Basic {token}" for _, _, h in registry.seen)
    assert [(method, path.split("?")[0]) for method, path, _ in other.seen] == [
        ("PUT", "/upload/u1")
    ]
    assert token not in headers_text(other.seen) and "Authorization" not in other.seen[0][2]


def test_a_same_origin_location_keeps_the_credentials(servers, tmp_path):
    registry, _ = servers
    client = RegistryClient(registry.host, insecure=True, credentials=("alice", PASSWORD))
    blob = tmp_path / "blob"
    blob.write_bytes(b"layer")
    RegistryWriter(client).upload("r", "sha256:" + "c" * 64, blob)
    put = [headers for method, _, headers in registry.seen if method == "PUT"]
    assert put and put[-1].get("Authorization", "").startswith("Basic ")


def test_a_netrc_default_entry_never_reaches_a_registry(servers, ambient_netrc):
    """Issue 23 item 6: requests would send the netrc `default` entry as Basic auth to any
    host; the registry client reads no netrc, so a registry a codeset names gets nothing."""
    _, other = servers
    client = RegistryClient(other.host, insecure=True)
    assert client.manifest_digest("library/python", "3.11") == "sha256:" + "a" * 64
    RegistryWriter(client).upload("r", "sha256:" + "d" * 64, b"x")
    assert other.seen and all("Authorization" not in h for _, _, h in other.seen)
    token = base64.b64encode(f"eve:{NETRC_PASSWORD}".encode()).decode()
    assert token not in headers_text(other.seen)


def test_index_credentials_go_to_the_index_origin_only():
    index = IndexSettings(
        "https://idx.example/simple/", ("http://extra.example:8080/simple/",),
        "extra.example",
        {"https://idx.example:443": ("u", "p"), "http://extra.example:8080": ("v", "q")},
    )  # fmt: skip
    assert index_credentials("https://idx.example/files/a.whl", index) == ("u", "p")
    assert index_credentials("http://idx.example/files/a.whl", index) is None  # plain http
    assert index_credentials("https://idx.example:444/a.whl", index) is None  # other port
    assert index_credentials("https://cdn.example/a.whl", index) is None  # other host
    # plain http where the host is named trusted (insecure), on the configured origin
    assert index_credentials("http://extra.example:8080/a.whl", index) == ("v", "q")
    assert index_credentials("http://extra.example/a.whl", index) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.9.0.1", "localhost", "[::1]"])
def test_a_loopback_index_over_plain_http_gets_its_credentials_as_pip_gives_them(host):
    """pip 26.3 takes loopback hosts as secure origins (`SECURE_ORIGINS`): it sends a
    `http://127.0.0.1:8080/simple/` index its credentials without `--trusted-host`, and so do
    the builder's own downloads and metadata reads. Another plain-http host still gets none."""
    index = IndexSettings(
        f"http://{host}:8080/simple/", ("http://elsewhere.example:8080/simple/",), "",
        {origin_of(f"http://{host}:8080/"): ("u", "p"), "http://elsewhere.example:8080": ("v", "")},
    )  # fmt: skip
    assert index_credentials(f"http://{host}:8080/packages/a.whl", index) == ("u", "p")
    assert index_credentials("http://elsewhere.example:8080/a.whl", index) is None


def test_a_url_two_parsers_read_apart_gets_no_credentials_and_a_lock_naming_one_is_refused(
    servers,
):
    """`http://ATTACKER\\@INDEX/x.whl`: urllib.parse (which keys the credentials) reads the
    index's host, urllib3 (which requests connects with) the attacker's. On the code before,
    the licence read sent the attacker the index's Basic credentials; now no credentials go
    with such a URL, and a lock (PEP 751) that names one is refused before any request."""
    _, attacker = servers
    index_port = services.free_port()
    index = IndexSettings(
        f"http://localhost:{index_port}/simple/",
        credentials={origin_of(f"http://localhost:{index_port}/"): ("alice", "s3cret")},
    )
    url = f"http://{attacker.host}\\@localhost:{index_port}/six-1.16.0-py3-none-any.whl"
    assert index_credentials(url, index) is None
    wheel = DistributionFile("six-1.16.0-py3-none-any.whl", url, "5" * 64)
    core_metadata._known.clear()
    with contextlib.suppress(StepError):  # the attacker's answer is no wheel
        core_metadata.licences([Distribution("six", "1.16.0", "", (wheel,))], index)
    assert attacker.seen  # the request went there: urllib3 connected to the attacker
    assert all("Authorization" not in headers for _, _, headers in attacker.seen)
    sha = "5" * 64
    lock = (
        'lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = "six"\n'
        f'version = "1.16.0"\nwheels = [{{ url = \'{url}\', hashes = {{ sha256 = "{sha}" }} }}]\n'
    )
    with pytest.raises(StepError, match=r"six.*refused: it holds a backslash"):
        read_pylock(lock, "pylock.toml")

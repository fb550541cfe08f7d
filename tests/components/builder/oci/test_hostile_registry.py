"""A registry that lies: a manifest fetched by digest must be the bytes that digest names, and a
manifest is never read beyond the 4 MiB the OCI distribution spec lets a registry refuse. An
http.server on 127.0.0.1 stands in for the hostile registry (a real one serves what it stores);
the honest path is covered against the real registry by every e2e build."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlflow_steps.components.builder.oci.registry import RegistryClient
from mlflow_steps.components.builder.oci.registry_push import MANIFEST_LIMIT, RegistryWriter
from mlflow_steps.components.problems import StepError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def serving():
    """(host, bodies): GET /v2/r/manifests/REF answers bodies[REF] (404 when absent)."""
    bodies: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            body = bodies.get(self.path.rpartition("/")[2])
            self.send_response(404 if body is None else 200)
            self.send_header("Content-Type", OCI_MANIFEST)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            # The client may stop reading a too large manifest, as it should.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body or b"")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", bodies
    server.shutdown()
    server.server_close()


def writer(host: str) -> RegistryWriter:
    return RegistryWriter(RegistryClient(host, insecure=True, credentials=None))


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_manifest_fetched_by_digest_is_the_bytes_the_digest_names(serving):
    host, bodies = serving
    honest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST}).encode()
    bodies[digest_of(honest)] = honest
    assert writer(host).get_manifest("r", digest_of(honest)) == (
        honest, OCI_MANIFEST, digest_of(honest)
    )  # fmt: skip
    claimed = "sha256:" + "1" * 64
    bodies[claimed] = honest
    with pytest.raises(StepError, match=r"r@sha256:1{64} was served with other bytes"):
        writer(host).get_manifest("r", claimed)


def test_a_manifest_larger_than_4_mib_is_refused_unread(serving):
    host, bodies = serving
    bodies["big"] = b"{" + b" " * (MANIFEST_LIMIT + 1) + b"}"
    with pytest.raises(StepError, match="larger than 4194304 bytes; refused"):
        writer(host).get_manifest("r", "big")

"""A real HTTP server on 127.0.0.1 that fails its first N requests, counts every request, and
can act as a bearer-token registry (challenge, token endpoint, manifest)."""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Behaviour:
    fail_first: int = 0
    fail_status: int = 503
    then_status: int = 404
    bearer: tuple[str, str] | None = None  # (user, password) the token endpoint accepts
    requests: list[str] = field(default_factory=list)


class FlakyServer:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        handler = type("Handler", (_Handler,), {"behaviour": behaviour})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FlakyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    behaviour: Behaviour
    TOKEN = "tok-123"

    def log_message(self, *args) -> None:
        pass

    def reply(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self) -> None:
        b = self.behaviour
        b.requests.append(f"{self.command} {self.path}")
        if len(b.requests) <= b.fail_first:
            self.reply(b.fail_status, {"Retry-After": "0"})
            return
        if b.bearer is None:
            self.reply(b.then_status, {"Docker-Content-Digest": "sha256:" + "a" * 64})
            return
        if self.path.startswith("/token"):
            user, password = b.bearer
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self.reply(401)
                return
            self.reply(
                200, {"Content-Type": "application/json"}, b'{"token": "%s"}' % self.TOKEN.encode()
            )
            return
        if self.headers.get("Authorization") != f"Bearer {self.TOKEN}":
            realm = f"http://{self.headers['Host']}/token"
            challenge = f'Bearer realm="{realm}",service="flaky",scope="repository:x:pull"'
            self.reply(
                401,
                {"WWW-Authenticate": challenge},
            )
            return
        self.reply(b.then_status, {"Docker-Content-Digest": "sha256:" + "b" * 64})

    do_HEAD = do_GET = do_POST = do_PUT = handle_any

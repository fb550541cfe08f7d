"""A registry that does not mount across repositories, as the OCI distribution spec allows
("the registry MAY start an upload instead": 202): the real `docker-registry` behind a small
forwarding proxy that drops the `mount` and `from` parameters of blob upload POSTs, so the
registry itself answers them with a fresh upload session. Debian's registry always mounts what
the source holds, so this is the only way to meet that answer here."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "keep-alive", "host"}


class MountRefusingProxy:
    """`host` (127.0.0.1:PORT) forwards to the registry at `upstream`; `refused` lists the
    (repository path, digest) of each mount it turned into an upload."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.refused: list[tuple[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qsl(parts.query, keep_blank_values=True)
                if self.command == "POST" and parts.path.endswith("/blobs/uploads/"):
                    mounts = [value for name, value in query if name == "mount"]
                    proxy.refused += [(parts.path, digest) for digest in mounts]
                    query = [(n, v) for n, v in query if n not in ("mount", "from")]
                length = int(self.headers.get("Content-Length") or 0)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Host"] = proxy.host  # the registry's Location headers name the proxy
                answer = requests.request(
                    self.command,
                    f"http://{proxy.upstream}{parts.path}"
                    + (f"?{urlencode(query)}" if query else ""),
                    headers=headers,
                    data=self.rfile.read(length) if length else None,
                    allow_redirects=False,
                    timeout=60,
                )
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in HOP_BY_HOP | {"content-encoding"}:
                        self.send_header(name, value)
                body = b"" if self.command == "HEAD" else answer.content
                length_sent = answer.headers.get("Content-Length", "0")
                self.send_header("Content-Length", length_sent if not body else str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward

            def log_message(self, *args) -> None:
                pass

        return Handler

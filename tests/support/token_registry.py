"""A registry with token authentication, as Harbor, GHCR and Docker Hub run it: Debian's CNCF
distribution (`docker-registry`, `auth: token`) verifies every request's Bearer token itself,
and the token service here issues them (distribution's docs/spec/auth/token.md and jwt.md).

The service takes Basic credentials, reads each `scope` query parameter as ONE scope (the
spec's GET form: a client sends one parameter per scope; it does not split on spaces),
grants what `grants(user, repository)` allows of the requested actions, and answers a JWT signed
RS256 with its certificate in `x5c`, which the registry checks against its `rootcertbundle`.
Every token request is kept (`TokenService.requests`: user and scopes) for the tests to read.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from mlflow_steps.stack.services import REGISTRY_CONFIG, Service, free_port, serving, start

SERVICE = "mlflow-steps-test-registry"
ISSUER = "mlflow-steps-test-token-service"
TOKEN_AUTH = """\
auth:
  token:
    realm: {realm}
    service: {service}
    issuer: {issuer}
    rootcertbundle: {bundle}
"""
Grants = Callable[[str, str], set[str]]  # (user, repository) -> actions allowed


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenService:
    users: dict[str, str]
    grants: Grants
    delay: float = 0.0  # seconds before each answer, as a remote token service takes
    key: rsa.RSAPrivateKey = field(init=False)
    certificate: x509.Certificate = field(init=False)
    requests: list[tuple[str, list[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def bundle(self, path: Path) -> Path:
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path

    def user_of(self, authorization: str) -> str | None:
        """The user of a Basic header ("" for none); None when the password is wrong."""
        if not authorization.startswith("Basic "):
            return ""
        user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        return user if self.users.get(user) == password else None

    def token(self, user: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = self.grants(user, name) if user else set()
            granted = [a for a in actions.split(",") if a in allowed]
            if kind == "repository" and granted:
                access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            **{"iss": ISSUER, "sub": user, "aud": SERVICE, "jti": uuid.uuid4().hex},
            **{"exp": now + 300, "nbf": now - 10, "iat": now, "access": access},
        }
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        signing = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{b64url(signature)}"

    def serve(self) -> tuple[ThreadingHTTPServer, str]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                user = service.user_of(self.headers.get("Authorization", ""))
                scopes = query.get("scope", [])
                service.requests.append((user or "", scopes))
                time.sleep(service.delay)
                if user is None:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"token": service.token(user, scopes), "expires_in": 300})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_port}/token"


def start_token_registry(
    workdir: Path, users: dict[str, str], grants: Grants
) -> tuple[Service, TokenService, ThreadingHTTPServer]:
    """A plain-http `docker-registry` on 127.0.0.1 that requires tokens of a `TokenService`
    over `users` ({name: password}); stop the registry (`Service.stop`) and then the token
    server (`shutdown`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    tokens = TokenService(users, grants)
    server, realm = tokens.serve()
    port = free_port()
    config = REGISTRY_CONFIG.format(data=workdir / "data", port=port)
    config += TOKEN_AUTH.format(realm=realm, service=SERVICE, issuer=ISSUER,
                                bundle=tokens.bundle(workdir / "token-ca.pem"))  # fmt: skip
    (workdir / "config.yml").write_text(config)
    log = workdir / "registry.log"
    process = start(["docker-registry", "serve", str(workdir / "config.yml")], log)
    host = f"127.0.0.1:{port}"
    return serving(Service(host, process, log), f"http://{host}/v2/"), tokens, server

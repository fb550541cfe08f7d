"""Ask a registry whether it holds one tag: a single manifest HEAD over the OCI distribution API.
The same request resolves a base image's tag to the digest the build is pinned to.

Auth follows the registry's challenge: anonymous first; on 401 `Basic`, the credentials of the
docker `config.json` (as Kaniko and buildah read it); on 401 `Bearer`, a token from the realm
(with those credentials when present). Tags are never listed. Connection errors, 5xx and 429 are
retried with exponential backoff (urllib3's `Retry`), then reported. A 401/403 after auth is an
auth error, never "not found".
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ...problems import StepError
from ..reading import grammar

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
RETRY_STATUSES = (429, 500, 502, 503, 504)
# docker config.json keys Docker Hub by its old index name; its API host is registry-1.docker.io.
DOCKER_HUB_KEYS = {"index.docker.io", "docker.io", "registry-1.docker.io"}
ALIASES = {key: DOCKER_HUB_KEYS for key in DOCKER_HUB_KEYS}


def auth_files() -> list[Path]:
    """Where credentials are looked for, in order (docker, buildah/podman, kaniko)."""
    candidates = []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        candidates.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    if os.environ.get("DOCKER_CONFIG"):
        candidates.append(Path(os.environ["DOCKER_CONFIG"]) / "config.json")
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    candidates += [Path.home() / ".docker" / "config.json", Path("/kaniko/.docker/config.json")]
    return candidates


def credentials_for(host: str, files: list[Path] | None = None) -> tuple[str, str] | None:
    """(username, password) for `host` from the first auth file that has an entry for it."""
    for path in auth_files() if files is None else files:
        try:
            auths = json.loads(path.read_text(encoding="utf-8")).get("auths", {})
        except (OSError, ValueError):
            continue
        for key, entry in auths.items():
            entry_host = re.sub(r"^https?://", "", key).split("/")[0]
            if host not in ALIASES.get(entry_host, {entry_host}) or not isinstance(entry, dict):
                continue
            if entry.get("username") and entry.get("password"):
                return entry["username"], entry["password"]
            if entry.get("auth"):
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                return user, password
    return None


@dataclass
class RegistryClient:
    host: str
    insecure: bool = False
    retries: int = 4
    backoff: float = 0.5
    timeout: float = 15.0
    credentials: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.credentials is None:
            self.credentials = credentials_for(self.host)
        retry = Retry(
            total=self.retries,
            connect=self.retries,
            read=self.retries,
            status=self.retries,
            backoff_factor=self.backoff,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"HEAD", "GET"}),
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        self.session = requests.Session()
        # No ambient credentials or proxies: ~/.netrc, $NETRC and *_PROXY are never read, so a
        # netrc `default` entry never reaches a registry a codeset names.
        self.session.trust_env = False
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))
        self.scheme = "http" if self.insecure else "https"

    def manifest_digest(self, repository: str, tag: str) -> str | None:
        """The digest of `repository:tag`, or None when the registry does not hold that tag."""
        url = f"{self.scheme}://{self.host}/v2/{repository}/manifests/{tag}"
        headers = {"Accept": MANIFEST_TYPES}
        response = self.request(url, headers)
        if response.status_code == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            headers["Authorization"] = self.authorization(challenge, repository)
            response = self.request(url, headers)
        if response.status_code == 200:
            digest = response.headers.get("Docker-Content-Digest") or ""
            if digest:
                grammar.check_digest(
                    digest, f"registry {self.host}: {repository}:{tag}'s Docker-Content-Digest"
                )
            return digest
        if response.status_code == 404:
            return None
        raise StepError(self.explain(response, repository))

    def request(self, url: str, headers: dict[str, str]) -> requests.Response:
        try:
            return self.session.head(url, headers=headers, timeout=self.timeout)
        except requests.exceptions.SSLError as exc:
            raise StepError(
                f"registry {self.host}: TLS failed ({exc.__class__.__name__}); for a plain http "
                "registry set insecure=true"
            ) from None
        except requests.exceptions.RetryError:
            raise StepError(
                f"registry {self.host}: still failing after {self.retries} retries (server "
                "errors or rate limiting); check the registry's health and try again"
            ) from None
        except requests.exceptions.ConnectionError:
            raise StepError(
                f"registry {self.host}: cannot connect over {self.scheme} after {self.retries} "
                "retries; check the registry host and port, and `insecure` for http registries"
            ) from None

    def authorization(self, challenge: str, repository: str) -> str:
        scheme, _, params_text = challenge.partition(" ")
        params = dict(re.findall(r'(\w+)="([^"]*)"', params_text))
        if scheme.lower() == "basic":
            if not self.credentials:
                raise StepError(self.no_credentials())
            token = base64.b64encode(":".join(self.credentials).encode()).decode()
            return f"Basic {token}"
        if scheme.lower() == "bearer" and params.get("realm"):
            # One `scope` parameter per space-separated entry of the challenge's scope (the
            # token spec, distribution's docs/spec/auth/token.md, as docker's client sends
            # them): a cross-repository mount's challenge names the target and the source, and
            # a token service may read each parameter as one scope, never splitting it.
            scopes = params.get("scope", "").split() or [f"repository:{repository}:pull"]
            query = {"service": params.get("service", ""), "scope": scopes}
            if not params["realm"].startswith("https://") and not self.insecure:
                raise StepError(
                    f"registry {self.host}: its token service {params['realm']} is not https; "
                    "credentials are sent over plain http only to a registry named insecure"
                )
            try:
                reply = self.session.get(
                    params["realm"], params=query, auth=self.credentials, timeout=self.timeout
                )
            except requests.exceptions.RequestException:
                raise StepError(
                    f"registry {self.host}: token service {params['realm']} unreachable"
                ) from None
            if reply.status_code in (401, 403):
                raise StepError(
                    self.no_credentials()
                    if not self.credentials
                    else (
                        f"registry {self.host}: the token service refused the credentials "
                        f"(HTTP {reply.status_code}); check the entry for {self.host} in your "
                        "docker config.json"
                    )
                )
            try:
                body = reply.json() if reply.ok else {}
            except ValueError:
                raise StepError(
                    f"registry {self.host}: token service {params['realm']} answered HTTP "
                    f"{reply.status_code} with a body that is not JSON; check the registry's "
                    "token service"
                ) from None
            bearer = body.get("token") or body.get("access_token") if isinstance(body, dict) else ""
            if not isinstance(bearer, str) or not bearer:
                raise StepError(
                    f"registry {self.host}: token service answered HTTP {reply.status_code} "
                    "without a token"
                )
            return f"Bearer {bearer}"
        raise StepError(f"registry {self.host}: unsupported auth challenge `{scheme}`")

    def no_credentials(self) -> str:
        where = ", ".join(str(p) for p in auth_files())
        return (
            f"registry {self.host} requires authentication and no credentials for it were "
            f"found (looked in {where}); add an `auths` entry for {self.host}"
        )

    def explain(self, response: requests.Response, repository: str) -> str:
        status = response.status_code
        if status in (401, 403):
            return (
                f"registry {self.host}: access to {repository} denied (HTTP {status}); the "
                f"credentials for {self.host} are wrong or lack pull/push rights"
            )
        if status in RETRY_STATUSES:
            return (
                f"registry {self.host}: HTTP {status} after {self.retries} retries; the registry "
                "is failing or rate limiting, try again later"
            )
        return f"registry {self.host}: unexpected HTTP {status} for {repository}"


# --- base images --------------------------------------------------------------------------------

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"


@dataclass(frozen=True)
class ImageReference:
    """An image reference, normalised as docker and containers/image do: `python:3.11` is
    docker.io/library/python:3.11. `tag` defaults to `latest` when no digest is given."""

    name: str  # as given
    host: str  # the registry's API host (registry-1.docker.io for docker.io)
    repository: str
    tag: str
    digest: str

    @property
    def repository_name(self) -> str:
        """`host/repository` as the FROM line writes it (docker.io names kept short)."""
        host = DOCKER_HUB if self.host == DOCKER_HUB_API else self.host
        return f"{host}/{self.repository}"

    def pinned(self, digest: str) -> str:
        """`host/repository@digest`: what FROM pulls, whatever the tag names later."""
        return f"{self.repository_name}@{digest}"


class BaseImageError(StepError):
    """A base image that cannot be resolved to a digest (the message names it)."""


@dataclass(frozen=True)
class PinnedBase:
    """A base image as named (`name`, for the OCI label base.name), the manifest digest its
    reference named when resolved (`digest`), and the reference FROM pulls (`pinned`)."""

    name: str
    digest: str
    pinned: str


def parse_reference(name: str) -> ImageReference:
    """Docker's reference grammar (distribution/reference, `grammar.REFERENCE_RE`), normalised
    as docker does; errors name the reference and say what is expected."""
    text = name.strip()
    why = grammar.reference_problem(text)
    if why:
        raise StepError(f"base image {name!r} {why}")
    rest, _, digest = text.partition("@")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        host, path = first, remainder
    else:
        host, path = DOCKER_HUB, rest
    path, colon, tag = path.rpartition(":") if ":" in path.rpartition("/")[2] else (path, "", "")
    if host == DOCKER_HUB:
        host = DOCKER_HUB_API
        if "/" not in path:
            path = f"library/{path}"
    return ImageReference(text, host, path, tag if colon else ("" if digest else "latest"), digest)


def resolve_base(
    name: str, insecure_hosts: frozenset[str] = frozenset(), client: RegistryClient | None = None
) -> PinnedBase:
    """A base image pinned: the digest it was given by (no request), else the one its tag
    names now, from one manifest HEAD (plus the auth round-trip a registry may ask for). Plain
    http only for `insecure_hosts`. Any failure is a StepError naming the base."""
    reference = parse_reference(name)
    if reference.digest:
        return PinnedBase(name, reference.digest, reference.pinned(reference.digest))
    if client is None:
        client = RegistryClient(reference.host, insecure=reference.host in insecure_hosts)
    try:
        digest = client.manifest_digest(reference.repository, reference.tag)
    except StepError as exc:
        raise BaseImageError(f"base image {name}: {exc}") from None
    if digest is None:
        raise BaseImageError(
            f"base image {name}: {reference.host} has no {reference.repository}:{reference.tag}; "
            "check base_image (or python_version / miniconda_version, which name the default "
            "bases) and that the image was pushed"
        )
    if not digest:
        raise BaseImageError(
            f"base image {name}: {reference.host} answered without a Docker-Content-Digest; "
            "give the base by digest instead (name@sha256:...)"
        )
    grammar.check_digest(digest, f"base image {name}: the registry's Docker-Content-Digest")
    return PinnedBase(name, digest, reference.pinned(digest))

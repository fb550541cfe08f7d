"""Write images over the OCI distribution API: blobs (checked, mounted or uploaded) and manifests.

Follows the OCI distribution spec v1.1: `HEAD /v2/<name>/blobs/<digest>` asks for a blob,
`POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other>` mounts one another repository of
the same registry holds (201; a registry that cannot mount starts an upload instead, 202, which
is cancelled), `POST` then a monolithic `PUT <location>?digest=<digest>` uploads one, `PUT
/v2/<name>/manifests/<reference>` stores a manifest. Auth is the `RegistryClient`'s (the
challenge answered once per repository, the header then reused). A Bearer token is asked for
the challenged repository's scope only, so a mount across repositories on a token registry may
be refused; it is then uploaded or rebuilt, never wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import requests

from ...problems import StepError
from .registry import MANIFEST_TYPES, RegistryClient

# The largest manifest read (OCI distribution spec 1.1: a registry may refuse one beyond 4 MiB).
MANIFEST_LIMIT = 4 * 1024 * 1024


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryWriter:
    """Blob and manifest requests to one registry host, with the `RegistryClient`'s auth."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client
        self.base = f"{client.scheme}://{client.host}"
        self.auth: dict[str, str] = {}  # `send`'s key -> Authorization header

    def send(self, method: str, url: str, repository: str, key: str = "",
             **kwargs: Any) -> requests.Response:  # fmt: skip
        """One request; on 401 the challenge is answered and the request sent once more (so a
        body must be bytes or None, never a stream). Tokens are kept per `key` (default: the
        repository): a request that needs other scopes (a mount also reads its source) keeps
        its own, so requests in parallel threads do not replace each other's. The retry uses
        the token just issued for its own challenge, never the shared one, which another thread
        may have replaced meanwhile."""
        key = key or repository
        headers = dict(kwargs.pop("headers", {}))
        if key in self.auth:
            headers["Authorization"] = self.auth[key]
        response = self.raw(method, url, headers, **kwargs)
        if response.status_code == 401 and self.same_origin(url):
            challenge = response.headers.get("WWW-Authenticate", "")
            response.close()  # a streamed answer's connection back to the pool
            token = self.client.authorization(challenge, repository)
            self.auth[key] = headers["Authorization"] = token
            response = self.raw(method, url, headers, **kwargs)
        return response

    def same_origin(self, url: str) -> bool:
        """Whether `url` is on this registry's origin (scheme, host and port, RFC 6454): the
        only one its credentials are sent to."""
        return origin(url) == origin(self.base)

    def raw(self, method: str, url: str, headers: dict[str, str], **kwargs: Any):
        """One request, its Authorization header dropped unless `url` is this registry's
        origin (an upload `Location` may name another host); redirects are followed by
        requests, which drops the header when the host changes."""
        if not self.same_origin(url):
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        try:
            return self.client.session.request(
                method, url, headers=headers, timeout=kwargs.pop("timeout", 300), **kwargs
            )
        except requests.exceptions.RequestException as exc:
            raise StepError(
                f"registry {self.client.host}: {method} failed ({exc.__class__.__name__}); check "
                "the registry host, `insecure` for http registries, and its health"
            ) from None

    def fail(self, response: requests.Response, what: str, repository: str) -> StepError:
        if response.status_code in (401, 403) and self.client.credentials is None:
            return StepError(f"{what} in {repository}: {self.client.no_credentials()}")
        if response.status_code in (401, 403):
            return StepError(
                f"registry {self.client.host}: {what} in {repository} refused (HTTP "
                f"{response.status_code}); the credentials for {self.client.host} lack push rights"
            )
        return StepError(
            f"registry {self.client.host}: {what} in {repository} failed (HTTP "
            f"{response.status_code}: {response.text[:200]})"
        )

    # --- blobs -------------------------------------------------------------------------------

    def has_blob(self, repository: str, digest: str) -> bool:
        url = f"{self.base}/v2/{repository}/blobs/{digest}"
        response = self.send("HEAD", url, repository)
        if response.status_code in (200, 404):
            return response.status_code == 200
        raise self.fail(response, f"HEAD blob {digest}", repository)

    def mount(self, repository: str, digest: str, source: str) -> bool:
        """Mount `digest` from `source` into `repository`; False when the registry does not
        hold it there (the upload it started instead is cancelled)."""
        url = f"{self.base}/v2/{repository}/blobs/uploads/"
        response = self.send("POST", url, repository, f"{repository} <- {source}",
                             params={"mount": digest, "from": source}, data=b"")  # fmt: skip
        if response.status_code == 201:
            return True
        if response.status_code == 202:
            location = self.location(response)
            self.send("DELETE", location, repository)
            return False
        raise self.fail(response, f"mount of {digest} from {source}", repository)

    def upload(self, repository: str, digest: str, source: Path | bytes | IO[bytes]) -> None:
        """Upload one blob (monolithic: POST, then PUT with the whole body): bytes, a file, or
        an open file read from its current position to its end."""
        url = f"{self.base}/v2/{repository}/blobs/uploads/"
        start = self.send("POST", url, repository, data=b"")
        if start.status_code != 202:
            raise self.fail(start, f"upload of {digest}", repository)
        location = self.location(start)
        headers = {"Content-Type": "application/octet-stream"}
        params = {"digest": digest}
        if isinstance(source, bytes):
            done = self.send("PUT", location, repository, params=params, data=source,
                             headers=headers)  # fmt: skip
        else:
            # The POST's own token (a stream cannot be sent twice, so no 401 round here).
            if "Authorization" in start.request.headers:
                headers["Authorization"] = start.request.headers["Authorization"]
            with contextlib.ExitStack() as stack:
                if isinstance(source, Path):
                    body: IO[bytes] = stack.enter_context(source.open("rb"))
                else:
                    body = source
                start_at = body.tell()
                headers["Content-Length"] = str(body.seek(0, os.SEEK_END) - start_at)
                body.seek(start_at)
                done = self.raw("PUT", location, headers, params=params, data=body)
        if done.status_code != 201:
            raise self.fail(done, f"upload of {digest}", repository)

    def ensure_blob(self, repository: str, digest: str, source: Path | bytes | IO[bytes]) -> bool:
        """Upload the blob unless `repository` holds it; True when it was uploaded."""
        if self.has_blob(repository, digest):
            return False
        self.upload(repository, digest, source)
        return True

    def get_blob(self, repository: str, digest: str) -> bytes:
        response = self.send("GET", f"{self.base}/v2/{repository}/blobs/{digest}", repository)
        if response.status_code != 200:
            raise self.fail(response, f"GET blob {digest}", repository)
        if sha256_digest(response.content) != digest:
            raise StepError(f"registry {self.client.host}: blob {digest} does not match its digest")
        return response.content

    def location(self, response: requests.Response) -> str:
        """The upload's URL (absolute; a relative Location is this registry's). One on
        another origin is used without credentials (`raw`)."""
        location = response.headers.get("Location", "")
        if not location:
            raise StepError(f"registry {self.client.host}: upload answered without a Location")
        return self.base + location if location.startswith("/") else location

    # --- manifests ---------------------------------------------------------------------------

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str, str] | None:
        """(bytes, media type, digest) of `repository:reference`, None when absent. StepError
        when the manifest is larger than `MANIFEST_LIMIT` bytes (the 4 MiB the OCI
        distribution spec 1.1 lets a registry refuse beyond), or when `reference` is a digest
        and the bytes served have another (a registry must serve what the digest names)."""
        url = f"{self.base}/v2/{repository}/manifests/{reference}"
        response = self.send(
            "GET", url, repository, headers={"Accept": MANIFEST_TYPES}, stream=True
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.fail(response, f"GET manifest {reference}", repository)
        content = b""
        for chunk in response.iter_content(64 * 1024):
            content += chunk
            if len(content) > MANIFEST_LIMIT:
                response.close()
                raise StepError(
                    f"registry {self.client.host}: manifest {repository}:{reference} is larger "
                    f"than {MANIFEST_LIMIT} bytes; refused"
                )
        digest = sha256_digest(content)
        if reference.startswith("sha256:") and digest != reference:
            raise StepError(
                f"registry {self.client.host}: manifest {repository}@{reference} was served "
                f"with other bytes ({digest}); refused"
            )
        media_type = response.headers.get("Content-Type", "").split(";")[0]
        return content, media_type, digest

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        url = f"{self.base}/v2/{repository}/manifests/{reference}"
        response = self.send(
            "PUT", url, repository, data=data, headers={"Content-Type": media_type}
        )
        if response.status_code != 201:
            raise self.fail(response, f"PUT manifest {reference}", repository)
        return sha256_digest(data)


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of `url`, the default port filled in."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port

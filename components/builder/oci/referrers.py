"""OCI 1.1 referrers: attach an artifact (the SBOM) to a pushed image, and find it again.

`attach` pushes an image manifest whose `artifactType` names the artifact, whose config is the
empty descriptor and whose one layer is the artifact, with `subject` = the image's manifest. A
registry with the referrers API answers the manifest PUT with an `OCI-Subject` header; for one
without it (Debian's distribution 2.8, older Harbor, ECR before 2024), the referrers tag schema
is kept as well: the image index tagged `sha256-<hex of the subject>` lists the referrer.

`find` asks `GET /v2/<name>/referrers/<digest>?artifactType=...` first and falls back to that
tag on 404.

Source: OCI distribution spec 1.1.0, "Pushing Manifests with Subject" and "Referrers Tag
Schema"; OCI image spec 1.1.0, "Guidelines for Artifact Usage" (the empty descriptor).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ...problems import StepError
from .registry_push import RegistryWriter, sha256_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"


@dataclass(frozen=True)
class Subject:
    """The manifest an artifact refers to: `digest` (`sha256:...`), `media_type`, `size` in
    bytes."""

    digest: str
    media_type: str
    size: int

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def fallback_tag(digest: str) -> str:
    """The referrers tag schema's tag for `digest`: `<alg>-<hex>`."""
    return digest.replace(":", "-", 1)


def artifact_manifest(subject: Subject, artifact_type: str, blob: bytes, title: str) -> bytes:
    """The referrer's image manifest (bytes as pushed, keys sorted)."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": sha256_digest(EMPTY), "size": 2},
        "layers": [
            {
                "mediaType": artifact_type,
                "digest": sha256_digest(blob),
                "size": len(blob),
                "annotations": {"org.opencontainers.image.title": title},
            }
        ],
        "subject": subject.descriptor(),
    }
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def attach(
    writer: RegistryWriter,
    repository: str,
    subject: Subject,
    artifact_type: str,
    blob: bytes,
    title: str,
) -> str:
    """Push `blob` as a referrer of `subject` in `repository`; returns the referrer manifest's
    digest. Keeps the fallback tag's index when the registry did not say it indexes
    referrers itself. Raises StepError for a refused request."""
    writer.ensure_blob(repository, sha256_digest(EMPTY), EMPTY)
    writer.ensure_blob(repository, sha256_digest(blob), blob)
    manifest = artifact_manifest(subject, artifact_type, blob, title)
    digest = sha256_digest(manifest)
    url = f"{writer.base}/v2/{repository}/manifests/{digest}"
    response = writer.send("PUT", url, repository, data=manifest,
                           headers={"Content-Type": OCI_MANIFEST})  # fmt: skip
    if response.status_code != 201:
        raise writer.fail(response, f"PUT referrer manifest {digest}", repository)
    if response.headers.get("OCI-Subject") == subject.digest:
        return digest
    tag = fallback_tag(subject.digest)
    found = writer.get_manifest(repository, tag)
    index = json.loads(found[0]) if found else {}
    if not isinstance(index, dict) or index.get("mediaType") != OCI_INDEX:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    entries = [m for m in index.get("manifests", []) if m.get("digest") != digest]
    entries.append(
        {
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": len(manifest),
            "artifactType": artifact_type,
        }
    )
    index["manifests"] = entries
    data = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
    writer.put_manifest(repository, tag, data, OCI_INDEX)
    return digest


def referrers(writer: RegistryWriter, repository: str, digest: str, artifact_type: str) -> list:
    """The descriptors of `digest`'s referrers of `artifact_type`: from the referrers API, or
    from the fallback tag's index where the registry has no such API (404)."""
    url = f"{writer.base}/v2/{repository}/referrers/{digest}"
    response = writer.send("GET", url, repository, params={"artifactType": artifact_type},
                           headers={"Accept": OCI_INDEX})  # fmt: skip
    if response.status_code == 200:
        manifests = response.json().get("manifests", [])
    elif response.status_code == 404:
        found = writer.get_manifest(repository, fallback_tag(digest))
        manifests = json.loads(found[0]).get("manifests", []) if found else []
    else:
        raise writer.fail(response, f"GET referrers of {digest}", repository)
    return [m for m in manifests if m.get("artifactType") == artifact_type]


def find(writer: RegistryWriter, repository: str, digest: str, artifact_type: str) -> bytes:
    """The bytes of the newest-listed referrer of `artifact_type` attached to `digest`; raises
    StepError when there is none."""
    found = referrers(writer, repository, digest, artifact_type)
    if not found:
        raise StepError(f"{repository}@{digest} has no {artifact_type} referrer")
    got = writer.get_manifest(repository, found[-1]["digest"])
    if got is None:
        raise StepError(f"{repository}: referrer {found[-1]['digest']} is listed but absent")
    layers = json.loads(got[0]).get("layers", [])
    if not layers:
        raise StepError(f"{repository}: referrer {found[-1]['digest']} has no layer")
    blob = writer.get_blob(repository, layers[0]["digest"])
    if sha256_digest(blob) != layers[0]["digest"]:
        raise StepError(f"{repository}: blob {layers[0]['digest']} does not match its digest")
    return blob

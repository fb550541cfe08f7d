"""The layer cache kept in the target registry: for each layer identity, a tiny OCI image
manifest tagged with the identity in the repository `mlflow-steps-layers` beside the target
repository (`team/project` -> `team/mlflow-steps-layers`), so every repository of a namespace
shares one cache, within the same push rights.

The record holds the layer's descriptor with its diff_id as an annotation (and a config shared
by all records); so one GET tells the builder the layer's digest, size and diff_id, and the
registry's garbage collector keeps the blob while the record exists. A lookup that finds no
record (or a registry that lost the blob, seen when the mount fails) means: build the layer.
A distribution layer's record also carries the licences its wheels' metadata gave
(`LICENCES`), so that a build reusing the layer writes its bill of materials without reading
them from the index again (`core_metadata.remember` checks them).

The cache is only a cache: its repository may be emptied or deleted at any time (a retention
policy, a person). A record is written only once the cache repository holds the layer's blob
(`keep`: there already, mounted, or uploaded), and a cache the registry refuses to write is
skipped, never a failed build.

A base record (`base_identity`: the base's manifest digest, the venv path, the bytecode flag,
uv's and the builder's versions) holds what the base's working container found: its Python
(`workspace.PROBE`, as an annotation) and the venv skeleton's layer. With it, a build whose
missing distributions the builder installs itself never pulls the base.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from mlflow_steps import __version__

from ....problems import StepError
from ...oci.registry_push import RegistryWriter, sha256_digest
from ...reading import grammar
from .image import OCI_CONFIG, OCI_MANIFEST, Descriptor, canonical, image_manifest
from .tarlayer import MEDIA_TYPE

CACHE_NAME = "mlflow-steps-layers"
DIFF_ID = "io.github.mlflow-steps.diff-id"
CONTENT = "io.github.mlflow-steps.layer"
BASE_PYTHON = "io.github.mlflow-steps.base-python"
LICENCES = "io.github.mlflow-steps.licences"
LICENCES_LIMIT = 256 * 1024  # characters of a record's licences read back, at most


class Found(NamedTuple):
    """A distribution layer's record: its descriptor, its diff_id, and the licences of its
    wheels as the record carries them (`core_metadata.known` as JSON; "" when it has none or
    more than `LICENCES_LIMIT` characters)."""

    descriptor: Descriptor
    diff_id: str
    licences: str = ""


@dataclass(frozen=True)
class BaseRecord:
    """The base's Python (`workspace.PROBE`'s answer) and its venv skeleton layer."""

    python: dict
    skeleton: Descriptor
    diff_id: str


def base_identity(base_digest: str, venv: str, compile_bytecode: bool, uv: str) -> str:
    payload = {
        "base": base_digest,
        "venv": venv,
        "compile_bytecode": compile_bytecode,
        "uv": uv,
        "builder": __version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def lookup_base(writer: RegistryWriter, repository: str, identity: str) -> BaseRecord | None:
    found = writer.get_manifest(repository, identity)
    if found is None:
        return None
    manifest = json.loads(found[0])
    try:
        layer = manifest["layers"][0]
        python = json.loads(manifest["annotations"][BASE_PYTHON])
        return BaseRecord(
            python,
            Descriptor(layer["mediaType"], layer["digest"], layer["size"]),
            layer["annotations"][DIFF_ID],
        )
    except (KeyError, IndexError, ValueError):
        return None  # not a record this builder wrote: the base is probed again


def cache_repository(repository: str) -> str:
    parent = repository.rpartition("/")[0]
    return f"{parent}/{CACHE_NAME}" if parent else CACHE_NAME


def lookup_one(writer: RegistryWriter, repository: str, identity: str) -> Found | None:
    """The record of the layer the cache holds under `identity`, else None (no record, or one
    without a diff_id)."""
    found = writer.get_manifest(repository, identity)
    if found is None:
        return None
    try:
        manifest = json.loads(found[0])
        layer = manifest["layers"][0]
        diff_id = layer.get("annotations", {}).get(DIFF_ID, "")
        licences = manifest.get("annotations", {}).get(LICENCES, "")
        descriptor = Descriptor(layer["mediaType"], layer["digest"], layer["size"])
    except (KeyError, IndexError, TypeError, AttributeError, ValueError, RecursionError):
        return None  # not a record this builder wrote: the layer is built
    if not (isinstance(diff_id, str) and diff_id and well_formed(descriptor)):
        return None
    if not isinstance(licences, str) or len(licences) > LICENCES_LIMIT:
        licences = ""
    return Found(descriptor, diff_id, licences)


def well_formed(descriptor: Descriptor) -> bool:
    """Whether a record's layer descriptor has the types and digest form this builder writes."""
    return (
        isinstance(descriptor.media_type, str)
        and isinstance(descriptor.digest, str)
        and grammar.SHA256_RE.fullmatch(descriptor.digest) is not None
        and type(descriptor.size) is int
        and descriptor.size >= 0
    )


def lookup(writer: RegistryWriter, repository: str, identities: list[str]) -> dict:
    """{identity: Found} for the identities the cache holds (parallel GETs, each identity
    once)."""
    unique = list(dict.fromkeys(identities))
    with ThreadPoolExecutor(8) as pool:
        found = pool.map(lambda key: lookup_one(writer, repository, key), unique)
        return {key: value for key, value in zip(unique, found) if value is not None}


def keep(
    writer: RegistryWriter, repository: str, digest: str, source: str, blob: Path | None
) -> bool:
    """Make the cache `repository` hold the blob `digest` that the repository `source` holds:
    True when it does already, or once mounted from `source` (201), or, when the mount is
    refused (202: the registry started an upload instead) and `blob` is the layer's file,
    uploaded; False (nothing to record) when the registry refuses all of these. Never raises
    `StepError`: the cache is only a cache."""
    try:
        if writer.has_blob(repository, digest):
            return True
        try:
            if writer.mount(repository, digest, source):
                return True
        except StepError:  # a mount refused outright (e.g. no pull right on `source`)
            pass
        if blob is None:
            return False
        writer.upload(repository, digest, blob)
        return True
    except StepError:
        return False


def record(
    writer: RegistryWriter,
    repository: str,
    identity: str,
    layer: Descriptor,
    diff_id: str,
    label: str,
    architecture: str,
    annotations: dict[str, str] | None = None,
) -> bool:
    """Keep `layer` (already in `repository`: see `keep`) under the tag `identity`. Every
    record shares one config (the layer's diff_id is an annotation of its descriptor),
    uploaded once per repository and again when the repository lost it. False when the
    registry refuses the record: the build goes on without it."""
    config = canonical({"architecture": architecture, "os": "linux", "rootfs": {"type": "layers"}})
    config_digest = sha256_digest(config)
    described = Descriptor(MEDIA_TYPE, layer.digest, layer.size, {DIFF_ID: diff_id})
    manifest = image_manifest(
        Descriptor(OCI_CONFIG, config_digest, len(config)),
        [described],
        {CONTENT: label, **(annotations or {})},
    )
    for known in (True, False):  # a refusal may be a config the repository lost: once more
        try:
            if not known or (repository, config_digest) not in _CONFIGS:
                writer.ensure_blob(repository, config_digest, config)
                _CONFIGS.add((repository, config_digest))
            writer.put_manifest(repository, identity, manifest, OCI_MANIFEST)
            return True
        except StepError:
            _CONFIGS.discard((repository, config_digest))
    return False


_CONFIGS: set[tuple[str, str]] = set()  # (repository, digest) of record configs known there

"""The base image as the registry serves it, and the config and manifest written on top of it.

The config is what the single-layer recipe's Dockerfile gives (recipe.finish_step): the base's
config with ENV VIRTUAL_ENV and PATH, WORKDIR /project, the builder's labels, ENTRYPOINT
`python -m mlflow_steps_runtime` (and, as a Dockerfile ENTRYPOINT does, no CMD inherited),
one history entry per layer, every timestamp the build's (SOURCE_DATE_EPOCH, else 0). The
manifest is an OCI image manifest, annotated with org.opencontainers.image.base.{name,digest}
(OCI image spec, annotations.md). Docker schema 2 media types of the base are written as their
OCI equivalents (the same bytes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ....problems import StepError
from ...oci.registry_push import RegistryWriter
from ...reading.grammar import check_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
INDEXES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff."
AS_OCI = {
    DOCKER_LAYER + "tar.gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    DOCKER_LAYER + "tar": "application/vnd.oci.image.layer.v1.tar",
}
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le", "s390x": "s390x"}
DOCKER_HUB = "registry-1.docker.io"
# What buildah and docker take for $PATH when the base sets none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Reference:
    host: str
    repository: str
    reference: str  # tag or sha256:... digest

    @classmethod
    def parse(cls, image: str) -> Reference:
        """docker's reading: a first component with `.` or `:` (or localhost) is a host, else
        Docker Hub (`library/` for single names); `@digest` wins over `:tag`; default latest."""
        name, _, digest = image.partition("@")
        first, _, rest = name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            host, path = first, rest
        else:
            host, path = DOCKER_HUB, name if "/" in name else f"library/{name}"
        tag = "latest"
        if ":" in path.rsplit("/", 1)[-1]:
            path, _, tag = path.rpartition(":")
        return cls(host, path, digest or tag)

    def at(self, digest: str) -> Reference:
        """This repository at `digest` (`sha256:...`, the manifest or index digest the build's
        tag hashes), so the base read is the one the tag names even if its tag moved since;
        itself when `digest` is empty (no digest was resolved)."""
        return Reference(self.host, self.repository, digest) if digest else self


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict:
        found: dict = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            found["annotations"] = dict(sorted(self.annotations.items()))
        return found


@dataclass
class BaseImage:
    reference: Reference
    digest: str  # of the (platform) manifest
    layers: list[Descriptor]
    config: dict


def document(data: bytes, where: str) -> dict:
    """A manifest, image index or config as JSON, its shape checked where the builder reads it
    (OCI image spec 1.1: `manifests` entries with a string `digest` and a `platform` of
    strings; `layers` with a string `mediaType` and `digest` and a non-negative integer
    `size`; `config` an object). StepError naming `where` otherwise: a registry's answer is
    not trusted to be well formed."""
    try:
        found = json.loads(data)
    except ValueError:
        raise StepError(f"{where}: not JSON") from None
    problems = []
    if not isinstance(found, dict):
        problems.append("not a JSON object")
        found = {}
    for entry in (
        found.get("manifests", []) if isinstance(found.get("manifests", []), list) else [None]
    ):
        platform = entry.get("platform", {}) if isinstance(entry, dict) else None
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("digest"), str)
            and isinstance(platform, dict)
            and all(isinstance(v, str) for v in platform.values() if not isinstance(v, list))
        ):
            problems.append("an index entry is not {digest, platform} of strings")
            break
    layers = found.get("layers", [])
    for layer in layers if isinstance(layers, list) else [None]:
        if not (
            isinstance(layer, dict)
            and isinstance(layer.get("mediaType"), str)
            and isinstance(layer.get("digest"), str)
            and type(layer.get("size")) is int
            and layer["size"] >= 0
        ):
            problems.append("a layer is not {mediaType, digest, size >= 0}")
            break
    if "config" in found and not isinstance(found["config"], dict):
        problems.append("its config is not an object")
    if problems:
        raise StepError(f"{where}: malformed ({'; '.join(problems)})")
    return found


def fetch_base(writer: RegistryWriter, ref: Reference, machine: str) -> BaseImage:
    """The base's manifest for this machine's architecture, and its config. StepError when
    the registry lacks it or serves something malformed (`document`)."""
    found = writer.get_manifest(ref.repository, ref.reference)
    if found is None:
        raise StepError(f"base image {ref.host}/{ref.repository}:{ref.reference} not found")
    data, media_type, digest = found
    manifest = document(data, f"base image {ref.repository}: {ref.reference}")
    if media_type in INDEXES or "manifests" in manifest:
        arch = ARCHITECTURES.get(machine, machine)
        for entry in manifest.get("manifests", []):
            platform = entry.get("platform", {})
            if platform.get("os") == "linux" and platform.get("architecture") == arch:
                digest = check_digest(
                    str(entry.get("digest")), f"base image {ref.repository}: index entry"
                )
                found = writer.get_manifest(ref.repository, digest)
                if found is None:
                    raise StepError(
                        f"base image {ref.repository}: its index names {digest}, which the "
                        "registry does not have"
                    )
                manifest = document(found[0], f"base image {ref.repository}: {digest}")
                break
        else:
            raise StepError(f"base image {ref.repository}: no linux/{arch} image in its index")
    where = f"base image {ref.repository}: manifest {digest}"
    if not isinstance(manifest.get("layers"), list) or "config" not in manifest:
        raise StepError(f"{where}: malformed (no layers or no config)")
    layers = [
        Descriptor(
            AS_OCI.get(layer["mediaType"], layer["mediaType"]),
            check_digest(str(layer.get("digest")), f"{where} layer"),
            layer["size"],
        )
        for layer in manifest["layers"]
    ]
    config_digest = check_digest(str(manifest["config"].get("digest")), f"{where} config")
    config = document(writer.get_blob(ref.repository, config_digest), f"{where} config")
    return BaseImage(ref, digest, layers, config)


def timestamp_text(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_config(
    base: dict,
    diff_ids: list[str],
    history: list[str],
    env: dict[str, str],
    labels: dict[str, str],
    timestamp: int,
) -> bytes:
    """The config: the base's, with `env` set (a `$PATH` in a value is the base's PATH, or
    `DEFAULT_PATH`),
    labels added, WORKDIR /project, the runtime's ENTRYPOINT, our layers' diff_ids and
    history appended."""
    config = dict(base.get("config") or {})
    variables = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    for name, value in env.items():
        variables[name] = value.replace("$PATH", variables.get("PATH", DEFAULT_PATH))
    config["Env"] = [f"{name}={value}" for name, value in variables.items()]
    config["WorkingDir"] = "/project"
    config["Labels"] = {**(config.get("Labels") or {}), **labels}
    config["Entrypoint"] = ["python", "-m", "mlflow_steps_runtime"]
    config.pop("Cmd", None)
    created = timestamp_text(timestamp)
    document = {
        "created": created,
        "architecture": base.get("architecture", "amd64"),
        "os": base.get("os", "linux"),
        **{key: base[key] for key in ("variant", "os.version") if key in base},
        "config": config,
        "rootfs": {
            "type": "layers",
            "diff_ids": [*base.get("rootfs", {}).get("diff_ids", []), *diff_ids],
        },
        "history": [
            *base.get("history", []),
            *({"created": created, "created_by": f"mlflow-steps: {what}"} for what in history),
        ],
    }
    return canonical(document)


def image_manifest(config: Descriptor, layers: list[Descriptor], annotations: dict[str, str]):
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.as_json(),
            "layers": [layer.as_json() for layer in layers],
            "annotations": dict(sorted(annotations.items())),
        }
    )


def canonical(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

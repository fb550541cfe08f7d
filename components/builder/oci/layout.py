"""Push an OCI image layout that a container which ran untrusted code wrote (the Kaniko
variant's `build` container, components/builder/backends/split.py), with nothing trusted in it.

The format is the OCI image-layout spec (image-spec v1.1 `image-layout.md`): `DIR/oci-layout`
(`{"imageLayoutVersion": "1.0.0"}`), `DIR/index.json` (an image index) and the blobs at
`DIR/blobs/sha256/<hex>`. Kaniko writes one with `--no-push --oci-layout-path DIR`: in the
executor the builder image ships (github.com/osscontainertools/kaniko v1.27.0, and the same in
chainguard-forks/kaniko), `cmd/executor/cmd/root.go` declares both flags (and lets
`--no-push` go without `--destination`), and `pkg/executor/push.go` `DoPush` calls
go-containerregistry's `layout.Write(DIR, empty.Index)` then `AppendImage(image)` before it
returns on `--no-push`: one image manifest in index.json, every layer and the config as blobs.
`--tar-path` writes a docker-style tarball instead (`tarball.MultiWriteToFile`), not used here.
`buildah push IMG oci:DIR` writes the same format.

Every check runs before the first request, so a layout that fails one pushes nothing
(`LayoutError`, a StepError naming the file and what is wrong):

- `oci-layout`, `index.json`, the manifest and the config are size-capped JSON of the shape
  the spec gives; index.json holds exactly one descriptor, an image manifest (OCI or Docker
  schema 2), whose media type the manifest repeats when it names one;
- every descriptor: a `sha256:` + 64 hex digest, an integer size, a known media type, no
  `urls` (nothing is fetched from elsewhere); the config's `rootfs.diff_ids` count the layers;
- every file is opened component by component from the layout folder with `O_NOFOLLOW` (a
  symlink anywhere, the layout folder included, is refused; a digest cannot name a path), must
  be a regular file of the descriptor's size, and is hashed while read: the bytes pushed are
  those of the descriptor's digest (the registry checks each upload's digest again).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ...problems import StepError
from ..reading import grammar
from .registry_push import MANIFEST_LIMIT, RegistryWriter, sha256_digest

LAYOUT_FILE_LIMIT = 4 * 1024
INDEX_LIMIT = 256 * 1024
CONFIG_LIMIT = 8 * 1024 * 1024
LAYER_LIMIT = 1000
CHUNK = 1024 * 1024

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG_TYPES = {
    OCI_MANIFEST: "application/vnd.oci.image.config.v1+json",
    DOCKER_MANIFEST: "application/vnd.docker.container.image.v1+json",
}
LAYER_TYPES = {
    OCI_MANIFEST: {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
    },
    DOCKER_MANIFEST: {"application/vnd.docker.image.rootfs.diff.tar.gzip"},
}

# The top-level fields an image layout's index.json and image manifest may have (OCI image
# spec 1.1 `image-index.md`, `manifest.md`), less `subject` and `artifactType`: a build
# writes an image, never a referrer of another image.
INDEX_KEYS = frozenset({"schemaVersion", "mediaType", "manifests", "annotations"})
MANIFEST_KEYS = frozenset({"schemaVersion", "mediaType", "config", "layers", "annotations"})


class LayoutError(StepError):
    """The layout is not one image this module pushes; nothing was pushed."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int


@dataclass
class LayoutImage:
    """One verified image: its manifest's bytes, media type and digest, and its blobs (config
    first, then the layers) as open files whose bytes matched their digests."""

    manifest: bytes
    media_type: str
    digest: str
    blobs: list[tuple[Descriptor, IO[bytes]]]


@contextlib.contextmanager
def read_layout(folder: Path) -> Iterator[LayoutImage]:
    """The one image of the OCI layout `folder`, every check of the module's docstring done;
    the blob files stay open (and are read from those handles, never reopened by name) until
    the context ends. LayoutError on any check that fails."""
    with contextlib.ExitStack() as stack:
        root = open_dir(folder)
        stack.callback(os.close, root)
        marker = load_json(read_small(root, "oci-layout", LAYOUT_FILE_LIMIT), "oci-layout")
        if not isinstance(marker, dict) or marker.get("imageLayoutVersion") != "1.0.0":
            raise LayoutError(f"{folder}/oci-layout: not an OCI image layout version 1.0.0")
        index = load_json(read_small(root, "index.json", INDEX_LIMIT), "index.json")
        if not isinstance(index, dict) or index.get("schemaVersion") != 2:
            raise LayoutError(f"{folder}/index.json: not an image index (schemaVersion 2)")
        if index.get("mediaType", OCI_INDEX) != OCI_INDEX:
            raise LayoutError(f"{folder}/index.json: media type {index['mediaType']!r}")
        if set(index) - INDEX_KEYS:
            raise LayoutError(
                f"{folder}/index.json: fields other than {', '.join(sorted(INDEX_KEYS))}"
            )
        manifests = index.get("manifests")
        if not isinstance(manifests, list) or len(manifests) != 1:
            count = len(manifests) if isinstance(manifests, list) else "no"
            raise LayoutError(
                f"{folder}/index.json: {count} manifests; the build writes exactly one image"
            )
        top = descriptor(manifests[0], "index.json manifests[0]", {OCI_MANIFEST, DOCKER_MANIFEST})
        blobs = open_dir_at(root, "blobs", folder)
        stack.callback(os.close, blobs)
        sha256 = open_dir_at(blobs, "sha256", folder)
        stack.callback(os.close, sha256)
        manifest_bytes = read_blob(sha256, top, MANIFEST_LIMIT)
        manifest = load_json(manifest_bytes, f"manifest {top.digest}")
        if not isinstance(manifest, dict) or manifest.get("schemaVersion") != 2:
            raise LayoutError(f"manifest {top.digest}: not an image manifest (schemaVersion 2)")
        extra = sorted(set(manifest) - MANIFEST_KEYS)
        if extra:  # `subject`, `artifactType`, `manifests`: a referrer of another image
            raise LayoutError(
                f"manifest {top.digest}: fields {', '.join(map(repr, extra))[:200]} are not "
                "what a build writes (a `subject` or `artifactType` would make the image a "
                "referrer of another one)"
            )
        if manifest.get("mediaType", top.media_type) != top.media_type:
            raise LayoutError(
                f"manifest {top.digest}: media type {manifest['mediaType']!r}, but index.json "
                f"says {top.media_type!r}"
            )
        config = descriptor(
            manifest.get("config"), f"manifest {top.digest} config", {CONFIG_TYPES[top.media_type]}
        )
        layers_field = manifest.get("layers")
        if not isinstance(layers_field, list) or len(layers_field) > LAYER_LIMIT:
            raise LayoutError(
                f"manifest {top.digest}: layers must be a list of at most {LAYER_LIMIT}"
            )
        layers = [
            descriptor(item, f"manifest {top.digest} layers[{n}]", LAYER_TYPES[top.media_type])
            for n, item in enumerate(layers_field)
        ]
        config_bytes = read_blob(sha256, config, CONFIG_LIMIT)
        config_object = load_json(config_bytes, f"config {config.digest}")
        rootfs = config_object.get("rootfs") if isinstance(config_object, dict) else None
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
            raise LayoutError(
                f"config {config.digest}: rootfs.diff_ids must list one digest per layer "
                f"({len(layers)})"
            )
        found: list[tuple[Descriptor, IO[bytes]]] = [(config, as_file(config_bytes))]
        for layer in layers:
            handle = stack.enter_context(open_blob(sha256, layer))
            verify(handle, layer)
            found.append((layer, handle))
        yield LayoutImage(manifest_bytes, top.media_type, top.digest, found)


def push_layout(folder: Path, writer: RegistryWriter, repository: str, tag: str) -> str:
    """Push the image of the layout `folder` to `repository:tag` (every blob the registry
    lacks, then the manifest, byte for byte): its digest, the layout's manifest digest.
    LayoutError before any request when the layout fails a check."""
    with read_layout(folder) as image:
        for item, handle in image.blobs:
            handle.seek(0)
            writer.ensure_blob(repository, item.digest, handle)
        return writer.put_manifest(repository, tag, image.manifest, image.media_type)


def descriptor(value: Any, where: str, media_types: set[str]) -> Descriptor:
    if not isinstance(value, dict):
        raise LayoutError(f"{where}: not a descriptor (a JSON object)")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or media_type not in media_types:
        raise LayoutError(f"{where}: media type {media_type!r}; expected {sorted(media_types)}")
    if not isinstance(digest, str) or not grammar.SHA256_RE.fullmatch(digest):
        raise LayoutError(f"{where}: digest {str(digest)[:80]!r} is not sha256: + 64 hex")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise LayoutError(f"{where}: size {size!r} is not a non-negative integer")
    if "urls" in value:
        raise LayoutError(f"{where}: has urls (a foreign blob); a built image has none")
    return Descriptor(media_type, digest, size)


def open_dir(folder: Path) -> int:
    """The layout folder, opened without following a symlink at its last component (the
    folders above it are the step's own: the shared volume)."""
    try:
        return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise LayoutError(
            f"{folder}: no OCI image layout folder here ({exc.strerror}; a symlink is refused); "
            "the build step (--phase install) writes it"
        ) from None


def open_dir_at(parent: int, name: str, folder: Path) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except OSError as exc:
        raise LayoutError(f"{folder}: {name} is not a folder ({exc.strerror})") from None


def open_regular(parent: int, name: str, where: str) -> IO[bytes]:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=parent)
    except OSError as exc:
        raise LayoutError(
            f"{where}: cannot open it ({exc.strerror}; a symlink is refused)"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LayoutError(f"{where}: not a regular file")
    return os.fdopen(fd, "rb")


def read_small(parent: int, name: str, limit: int) -> bytes:
    with open_regular(parent, name, name) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise LayoutError(f"{name}: larger than {limit} bytes; refused")
    return data


def open_blob(sha256: int, item: Descriptor) -> IO[bytes]:
    handle = open_regular(sha256, item.digest.split(":", 1)[1], f"blob {item.digest}")
    if os.fstat(handle.fileno()).st_size != item.size:
        handle.close()
        raise LayoutError(f"blob {item.digest}: not of the size its descriptor gives ({item.size})")
    return handle


def read_blob(sha256: int, item: Descriptor, limit: int) -> bytes:
    if item.size > limit:
        raise LayoutError(f"blob {item.digest}: {item.size} bytes, more than {limit}; refused")
    with open_blob(sha256, item) as handle:
        data = handle.read(item.size + 1)
    if len(data) != item.size or sha256_digest(data) != item.digest:
        raise LayoutError(f"blob {item.digest}: its bytes do not match its digest; refused")
    return data


def verify(handle: IO[bytes], item: Descriptor) -> None:
    """Hash the open blob to its end: LayoutError unless it is `item`'s bytes."""
    hasher, seen = hashlib.sha256(), 0
    while chunk := handle.read(CHUNK):
        hasher.update(chunk)
        seen += len(chunk)
    if seen != item.size or "sha256:" + hasher.hexdigest() != item.digest:
        raise LayoutError(f"blob {item.digest}: its bytes do not match its digest; refused")


def load_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise LayoutError(f"{where}: not JSON") from None


def as_file(data: bytes) -> IO[bytes]:
    return io.BytesIO(data)

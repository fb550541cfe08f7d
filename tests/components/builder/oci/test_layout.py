"""The push container's reader of the OCI image layout the Kaniko build container wrote
(components/builder/oci/layout.py): that container ran the codeset's code, so the layout is
hostile input. Each case is a layout written here by hand, pushed to the real registry
(docker-registry, the `registry` fixture): a good one lands byte for byte; each bad one is a
clear LayoutError and the registry saw no request at all (its access log).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from mlflow_steps.components.builder.oci.layout import (
    INDEX_LIMIT,
    LayoutError,
    push_layout,
    read_layout,
)
from mlflow_steps.components.builder.oci.registry import RegistryClient
from mlflow_steps.components.builder.oci.registry_push import RegistryWriter
from tests.support.oci import registry_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(layout: Path, data: bytes) -> dict:
    digest = digest_of(data)
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def write_layout(layout: Path, marker: str = "x") -> dict:
    """A one-layer image (one file, /marker) as Kaniko writes it: oci-layout, index.json with
    one manifest, blobs/sha256/*. Returns {"manifest": descriptor, "layer": descriptor}."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("marker")
        info.size = len(marker)
        tar.addfile(info, io.BytesIO(marker.encode()))
    layer = {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        **put_blob(layout, gzip.compress(raw.getvalue(), mtime=0)),
    }
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [digest_of(raw.getvalue())]},
    }
    config_desc = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        **put_blob(layout, json.dumps(config).encode()),
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_desc,
        "layers": [layer],
    }
    manifest_desc = {"mediaType": OCI_MANIFEST, **put_blob(layout, json.dumps(manifest).encode())}
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
    (layout / "index.json").write_text(json.dumps({**index, "manifests": [manifest_desc]}))
    return {"manifest": manifest_desc, "layer": layer, "manifest_object": manifest}


def writer(registry) -> RegistryWriter:
    return RegistryWriter(RegistryClient(registry.host, insecure=True))


def test_a_layout_is_pushed_byte_for_byte_and_its_digest_is_the_manifests(registry, tmp_path):
    wrote = write_layout(tmp_path / "layout")
    repository = f"layout/good-{uuid.uuid4().hex[:8]}"
    digest = push_layout(tmp_path / "layout", writer(registry), repository, "t1")
    assert digest == wrote["manifest"]["digest"]
    assert registry_digest(f"{registry.host}/{repository}:t1") == digest


def rewrite_index(layout: Path, change) -> None:
    index = json.loads((layout / "index.json").read_text())
    change(index)
    (layout / "index.json").write_text(json.dumps(index))


def blob_path(layout: Path, descriptor: dict) -> Path:
    return layout / "blobs" / "sha256" / descriptor["digest"].split(":")[1]


def tamper_layer_bytes(layout: Path, wrote: dict) -> None:
    path = blob_path(layout, wrote["layer"])
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    path.write_bytes(bytes(data))


def symlink_layer(layout: Path, wrote: dict) -> None:
    path = blob_path(layout, wrote["layer"])
    outside = layout.parent / "outside-blob"
    outside.write_bytes(path.read_bytes())  # even the right bytes: a symlink is refused
    path.unlink()
    path.symlink_to(outside)


def two_manifests(layout: Path, wrote: dict) -> None:
    rewrite_index(layout, lambda index: index["manifests"].append(index["manifests"][0]))


def oversized_index(layout: Path, wrote: dict) -> None:
    rewrite_index(layout, lambda index: index.update(annotations={"x": "y" * INDEX_LIMIT}))


def manifest_points_outside(layout: Path, wrote: dict) -> None:
    # A layer descriptor whose `digest` walks out of blobs/ (and a foreign `urls` one, below).
    manifest = wrote["manifest_object"]
    manifest["layers"][0]["digest"] = "sha256:../../../../etc/passwd"
    desc = {"mediaType": OCI_MANIFEST, **put_blob(layout, json.dumps(manifest).encode())}
    rewrite_index(layout, lambda index: index.update(manifests=[desc]))


def foreign_layer(layout: Path, wrote: dict) -> None:
    manifest = wrote["manifest_object"]
    manifest["layers"][0]["urls"] = ["https://example.com/layer"]
    desc = {"mediaType": OCI_MANIFEST, **put_blob(layout, json.dumps(manifest).encode())}
    rewrite_index(layout, lambda index: index.update(manifests=[desc]))


def symlinked_layout(layout: Path, wrote: dict) -> None:
    real = layout.parent / "real-layout"
    layout.rename(real)
    layout.symlink_to(real)


def an_image_index_inside(layout: Path, wrote: dict) -> None:
    rewrite_index(
        layout,
        lambda index: index["manifests"][0].update(
            mediaType="application/vnd.oci.image.index.v1+json"
        ),
    )


def a_fifo_blob(layout: Path, wrote: dict) -> None:
    path = blob_path(layout, wrote["layer"])
    path.unlink()
    os.mkfifo(path)


def a_referrer_of_another_image(layout: Path, wrote: dict) -> None:
    # `subject` + `artifactType`: pushed, it would be listed as another image's SBOM.
    manifest = wrote["manifest_object"]
    manifest["artifactType"] = "application/vnd.cyclonedx+json"
    manifest["subject"] = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "b" * 64, "size": 9}
    desc = {"mediaType": OCI_MANIFEST, **put_blob(layout, json.dumps(manifest).encode())}
    rewrite_index(layout, lambda index: index.update(manifests=[desc]))


def an_index_with_a_subject(layout: Path, wrote: dict) -> None:
    subject = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "b" * 64, "size": 9}
    rewrite_index(layout, lambda index: index.update(subject=subject))


@pytest.mark.parametrize(
    "tamper, message",
    [
        (tamper_layer_bytes, "do not match its digest"),
        (symlink_layer, "a symlink is refused"),
        (two_manifests, "2 manifests; the build writes exactly one image"),
        (oversized_index, f"index.json: larger than {INDEX_LIMIT} bytes"),
        (manifest_points_outside, "is not sha256: + 64 hex"),
        (foreign_layer, "has urls"),
        (symlinked_layout, "a symlink is refused"),
        (an_image_index_inside, "media type"),
        (a_fifo_blob, "not a regular file"),
        (a_referrer_of_another_image, "would make the image a referrer"),
        (an_index_with_a_subject, "index.json: fields other than"),
    ],
)
def test_a_hostile_layout_is_refused_before_any_request(registry, tmp_path, tamper, message):
    layout = tmp_path / "layout"
    wrote = write_layout(layout, marker=uuid.uuid4().hex)
    tamper(layout, wrote)
    with pytest.raises(LayoutError) as caught, read_layout(layout):
        pass
    assert message in str(caught.value)
    repository = f"layout/bad-{uuid.uuid4().hex[:8]}"
    time.sleep(0.2)  # the registry writes its access log after answering
    before = len(registry.requests_seen())
    with pytest.raises(LayoutError):
        push_layout(layout, writer(registry), repository, "t1")
    time.sleep(0.2)
    assert registry.requests_seen()[before:] == []  # nothing pushed, nothing even asked
    assert RegistryClient(registry.host, insecure=True).manifest_digest(repository, "t1") is None

"""The layer cache is only a cache, against the real registry (Debian's `docker-registry`): a
cache repository deleted between builds (its folder removed under the registry's storage root,
as a retention policy or a person would) is written again, and a mount the registry answers
with 202 (an upload session instead) is followed by an upload; the builder never fails for it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import types
from pathlib import Path

import pytest

from mlflow_steps.components.builder.backends.layered import cache
from mlflow_steps.components.builder.backends.layered.image import OCI_MANIFEST, Descriptor
from mlflow_steps.components.builder.backends.layered.tarlayer import MEDIA_TYPE
from mlflow_steps.components.builder.oci.registry import RegistryClient
from mlflow_steps.components.builder.oci.registry_push import RegistryWriter
from tests.support.mount_refusing import MountRefusingProxy

pytestmark = pytest.mark.e2e


def delete_repository(registry, repository: str) -> None:
    """What a retention policy does: the repository (tags, manifests, blob links) is gone."""
    folder = registry.log.parent / "data" / "docker/registry/v2/repositories" / repository
    assert folder.is_dir()
    shutil.rmtree(folder)


def layer_file(tmp_path: Path) -> tuple[Path, Descriptor]:
    data = os.urandom(4096)
    path = tmp_path / "layer.tar.gz"
    path.write_bytes(data)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return path, Descriptor(MEDIA_TYPE, digest, len(data))


def namespace(tmp_path: Path) -> str:
    return "cache-" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:10]


def kept_layer(registry, tmp_path: Path):
    """(writer, target repository, its cache repository, the layer's file, its descriptor):
    a layer uploaded into the target and kept in the cache."""
    writer = RegistryWriter(RegistryClient(registry.host, insecure=True))
    target = f"{namespace(tmp_path)}/a"
    layers = cache.cache_repository(target)
    path, layer = layer_file(tmp_path)
    writer.upload(target, layer.digest, path)
    assert cache.keep(writer, layers, layer.digest, target, path)
    return writer, target, layers, path, layer


def test_a_deleted_cache_repository_is_written_again(registry, tmp_path):
    writer, target, layers, path, layer = kept_layer(registry, tmp_path)
    told = json.dumps({"a" * 64: {"at": "http://h/a.whl", "licences": [{"expression": "MIT"}]}})
    assert cache.record(writer, layers, "one", layer, "sha256:d1", "six 1.16.0", "amd64",
                        {cache.LICENCES: told})  # fmt: skip
    assert cache.lookup(writer, layers, ["one"])["one"] == (layer, "sha256:d1", told)

    delete_repository(registry, layers)
    assert cache.lookup(writer, layers, ["one"]) == {}
    # The target still holds the blob, the cache lost it (and the records' config, which this
    # process remembers uploading): a record alone is refused by the registry, and skipped.
    assert cache.record(writer, layers, "one", layer, "sha256:d1", "six 1.16.0", "amd64") is False
    assert cache.keep(writer, layers, layer.digest, target, path)  # mounted from the target
    assert cache.record(writer, layers, "one", layer, "sha256:d1", "six 1.16.0", "amd64")
    assert cache.lookup(writer, layers, ["one"])["one"][:2] == (layer, "sha256:d1")
    assert writer.get_blob(layers, layer.digest) == path.read_bytes()


def test_a_mount_answered_with_202_is_uploaded_into_the_cache_instead(registry, tmp_path):
    proxy = MountRefusingProxy(registry.host)
    try:
        writer = RegistryWriter(RegistryClient(proxy.host, insecure=True))
        target = f"{namespace(tmp_path)}/a"
        layers = cache.cache_repository(target)
        path, layer = layer_file(tmp_path)
        writer.upload(target, layer.digest, path)
        assert writer.mount(layers, layer.digest, target) is False  # 202, session cancelled
        assert proxy.refused == [(f"/v2/{layers}/blobs/uploads/", layer.digest)]
        assert not cache.keep(writer, layers, layer.digest, target, None)  # no file: no record
        assert not writer.has_blob(layers, layer.digest)
        assert cache.keep(writer, layers, layer.digest, target, path)  # uploaded
        assert writer.get_blob(layers, layer.digest) == path.read_bytes()
        assert cache.record(writer, layers, "one", layer, "sha256:d1", "six", "amd64")
        assert cache.lookup(writer, layers, ["one"])["one"][:2] == (layer, "sha256:d1")
    finally:
        proxy.stop()


@pytest.mark.parametrize(
    ("change", "taken"),
    [({"annotations": None}, False), ({"layers": []}, False), ({"layers": [None]}, False),
     ({"annotations": []}, False), ({"size": "1"}, False), ({"digest": 5}, False),
     ({"digest": "sha256:" + "A" * 64}, False),
     ({"annotations": {cache.LICENCES: "x" * (cache.LICENCES_LIMIT + 1)}}, True)],
)  # fmt: skip
def test_a_record_this_builder_did_not_write_is_passed_over(registry, tmp_path, change, taken):
    """A manifest under an identity's tag in the cache repository (anyone with push rights
    there may write one; a registry that checks less than Debian's serves these as written):
    malformed, it reads as no record (the layer is built); an over-long licences annotation
    reads as none (they are read from the index)."""
    writer, _, layers, _, layer = kept_layer(registry, tmp_path)
    assert cache.record(writer, layers, "one", layer, "sha256:d1", "six", "amd64")
    manifest = json.loads(writer.get_manifest(layers, "one")[0])
    if "annotations" in change or "layers" in change:
        manifest.update(change)
    else:
        manifest["layers"][0].update(change)
    written = json.dumps(manifest).encode()
    served = types.SimpleNamespace(get_manifest=lambda repository, tag: (written, OCI_MANIFEST))
    found = cache.lookup_one(served, layers, "one")  # type: ignore[arg-type]
    assert found == ((layer, "sha256:d1", "") if taken else None)

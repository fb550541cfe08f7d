"""The SBOM: a CycloneDX 1.5 document made from a real lock, validated by cyclonedx-python-lib's
JSON schema validator, and attached to an image pushed to Debian's registry (distribution 2.8,
no referrers API: the referrers tag schema) and found again."""

from __future__ import annotations

import json
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from mlflow_steps.components.builder.oci import referrers, sbom
from mlflow_steps.components.builder.oci.registry import RegistryClient
from mlflow_steps.components.builder.oci.registry_push import RegistryWriter, sha256_digest
from mlflow_steps.components.builder.planning.resolution import read_pylock

LOCK = Path(__file__).resolve().parents[3] / "cases" / "pylock" / "pylock.toml"
BASE = "127.0.0.1:5000/base/debian:bookworm"
BASE_DIGEST = "sha256:" + "ab" * 32


def document(licences=None) -> dict:
    dists = read_pylock(LOCK.read_text(), "lock")
    data = sbom.cyclonedx(dists, "r/team/trainer:abc", BASE, BASE_DIGEST, licences)
    return json.loads(data)


def test_the_document_validates_against_cyclonedx_1_5_and_lists_exactly_the_lock():
    dists = read_pylock(LOCK.read_text(), "lock")
    data = sbom.cyclonedx(dists, "r/team/trainer:abc", BASE, BASE_DIGEST)
    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(data.decode())
    assert error is None, error
    bom = json.loads(data)
    libraries = [c for c in bom["components"] if c["type"] == "library"]
    assert [(c["name"], c["version"]) for c in libraries] == [(d.name, d.version) for d in dists]
    for component, dist in zip(libraries, dists):
        assert component["purl"] == f"pkg:pypi/{dist.name}@{dist.version}"
        assert {h["content"] for h in component["hashes"]} == {f.sha256 for f in dist.files}
    (base,) = [c for c in bom["components"] if c["type"] == "container"]
    assert base["version"] == BASE_DIGEST
    assert base["purl"].startswith("pkg:oci/debian@sha256%3A")


def test_the_document_is_deterministic_and_its_serial_follows_its_content():
    first, again = document(), document()
    assert first == again
    other = document({"six": {"expression": "MIT"}})
    assert other["serialNumber"] != first["serialNumber"]
    (six,) = [c for c in other["components"] if c["name"] == "six"]
    assert six["licenses"] == [{"expression": "MIT"}]


def test_licences_come_from_the_metadata_the_distribution_gives(tmp_path):
    def dist(name: str, *lines: str) -> None:
        folder = tmp_path / f"{name}-1.0.dist-info"
        folder.mkdir()
        text = "\n".join(["Metadata-Version: 2.4", f"Name: {name}", "Version: 1.0", *lines])
        (folder / "METADATA").write_text(text + "\n\nlong description\n")

    dist("Spdx_Pkg", "License-Expression: Apache-2.0 OR MIT", "License: ignored")
    dist("field-pkg", "License: BSD-3-Clause")
    dist("classified", "Classifier: License :: OSI Approved :: MIT License")
    dist("none-given", "Classifier: Programming Language :: Python")
    assert sbom.licences_in(tmp_path) == {
        "spdx-pkg": {"expression": "Apache-2.0 OR MIT"},
        "field-pkg": {"license": {"name": "BSD-3-Clause"}},
        "classified": {"license": {"name": "MIT License"}},
    }


def push_small_image(writer: RegistryWriter, repository: str) -> referrers.Subject:
    layer = b"not a real tar, the registry does not look"
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
    writer.ensure_blob(repository, sha256_digest(layer), layer)
    writer.ensure_blob(repository, sha256_digest(config), config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": referrers.OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256_digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256_digest(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    digest = writer.put_manifest(repository, "v1", manifest, referrers.OCI_MANIFEST)
    return referrers.Subject(digest, referrers.OCI_MANIFEST, len(manifest))


def test_the_sbom_is_attached_as_a_referrer_and_found_through_the_fallback_tag(registry):
    writer = RegistryWriter(RegistryClient(registry.host, insecure=True))
    repository = "sbom/attached"
    subject = push_small_image(writer, repository)
    data = sbom.cyclonedx(
        read_pylock(LOCK.read_text(), "lock"), f"{repository}:v1", BASE, BASE_DIGEST
    )
    digest = referrers.attach(writer, repository, subject, sbom.MEDIA_TYPE, data, "sbom.cdx.json")
    # Debian's distribution has no referrers API: the tag schema's index lists it.
    index = writer.get_manifest(repository, referrers.fallback_tag(subject.digest))
    assert index is not None
    listed = json.loads(index[0])["manifests"]
    assert [(m["digest"], m["artifactType"]) for m in listed] == [(digest, sbom.MEDIA_TYPE)]
    manifest = json.loads(writer.get_manifest(repository, digest)[0])
    assert manifest["subject"]["digest"] == subject.digest
    assert manifest["artifactType"] == sbom.MEDIA_TYPE
    assert referrers.find(writer, repository, subject.digest, sbom.MEDIA_TYPE) == data
    # Attaching the same document again keeps one entry.
    referrers.attach(writer, repository, subject, sbom.MEDIA_TYPE, data, "sbom.cdx.json")
    again = json.loads(writer.get_manifest(repository, referrers.fallback_tag(subject.digest))[0])
    assert len(again["manifests"]) == 1


def test_an_image_without_an_sbom_says_so(registry):
    writer = RegistryWriter(RegistryClient(registry.host, insecure=True))
    subject = push_small_image(writer, "sbom/bare")
    try:
        referrers.find(writer, "sbom/bare", subject.digest, sbom.MEDIA_TYPE)
    except Exception as exc:  # StepError
        assert "has no application/vnd.cyclonedx+json referrer" in str(exc)
    else:
        raise AssertionError("found an SBOM that was never attached")

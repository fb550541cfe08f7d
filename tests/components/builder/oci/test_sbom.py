"""The SBOM: a CycloneDX 1.5 document made from a real lock, validated by cyclonedx-python-lib's
JSON schema validator, and attached to an image pushed to Debian's registry (distribution 2.8,
no referrers API: the referrers tag schema) and found again."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
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
    other = document({"six": [{"expression": "MIT"}]})
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
        "spdx-pkg": [{"expression": "Apache-2.0 OR MIT"}],
        "field-pkg": [{"license": {"name": "BSD-3-Clause"}}],
        "classified": [{"license": {"name": "MIT License"}}],
    }


def metadata(*lines: str) -> str:
    return "\n".join(["Metadata-Version: 2.4", "Name: p", "Version: 1", *lines]) + "\n\nbody\n"


MIT_CLASSIFIER = "Classifier: License :: OSI Approved :: MIT License"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        # PEP 639: the expression wins over the legacy field and classifiers, canonicalised.
        (["License-Expression: apache-2.0 or mit", "License: BSD", MIT_CLASSIFIER],
         [{"expression": "Apache-2.0 OR MIT"}]),
        # An expression that is not valid SPDX is left out: the next source answers.
        (["License-Expression: Apache 2 or whatever", "License: BSD"],
         [{"license": {"name": "BSD"}}]),
        (["License-Expression: MIT\x07", MIT_CLASSIFIER], [{"license": {"name": "MIT License"}}]),
        # The legacy field, when it is a short name.
        (["License: Apache 2.0", MIT_CLASSIFIER], [{"license": {"name": "Apache 2.0"}}]),
        (["License: UNKNOWN"], None),
        (["License: unknown", MIT_CLASSIFIER], [{"license": {"name": "MIT License"}}]),
        # A licence text (folded over lines, or long) is not a name: the classifiers answer.
        (["License: Copyright (c) someone", "        Permission is hereby granted", MIT_CLASSIFIER],
         [{"license": {"name": "MIT License"}}]),
        (["License: " + "x" * 101], None),
        # Every licence classifier, sorted, without the bare "OSI Approved" or repeats.
        (["Classifier: License :: OSI Approved :: MIT License",
          "Classifier: License :: OSI Approved",
          "Classifier: License :: OSI Approved :: Apache Software License",
          "Classifier: License :: OSI Approved :: MIT License",
          "Classifier: Programming Language :: Python :: 3"],
         [{"license": {"name": "Apache Software License"}}, {"license": {"name": "MIT License"}}]),
        (["Classifier: Programming Language :: Python :: 3"], None),
        ([], None),
    ],
)  # fmt: skip
def test_licence_of_follows_pep_639_then_the_field_then_the_classifiers(lines, expected):
    assert sbom.licence_of(metadata(*lines)) == expected


HOSTILE = "GPL\x00\x01\x1b[31m\u202e\x7f" + "\t\x0b\x0c" + "A" * (1 << 20)


def test_a_hostile_licence_is_one_clean_capped_line_and_the_document_stays_valid():
    lines = [f"License-Expression: {HOSTILE}", f"License: {HOSTILE}",
             f"Classifier: License :: {HOSTILE}", "Classifier: License :: \x00\x01 "]  # fmt: skip
    choice = sbom.licence_of(metadata(*lines))
    assert choice is not None
    (name,) = [entry["license"]["name"] for entry in choice]
    assert len(name) == sbom.LICENCE_LIMIT
    assert name.startswith("GPL [31m ") and name.endswith("A")
    assert not any(unicodedata.category(c)[0] == "C" for c in name)
    data = sbom.cyclonedx(read_pylock(LOCK.read_text(), "lock"), "r/team/trainer:abc", BASE,
                          BASE_DIGEST, {"six": choice})  # fmt: skip
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(data.decode()) is None
    (six,) = [c for c in json.loads(data)["components"] if c["name"] == "six"]
    assert six["licenses"] == choice
    assert len(data) < 8000


def test_every_licence_choice_validates_against_cyclonedx_1_5():
    choices = [[{"expression": "Apache-2.0 OR MIT"}], [{"license": {"name": "BSD License"}}],
               [{"license": {"name": "A"}}, {"license": {"name": "B"}}]]  # fmt: skip
    dists = read_pylock(LOCK.read_text(), "lock")
    for choice in choices:
        data = sbom.cyclonedx(dists, "r/t:abc", BASE, BASE_DIGEST, {"six": choice})
        assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(data.decode()) is None


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


@pytest.mark.parametrize(
    "lines",
    [["License-Expression: apache-2.0 OR mit"], ["License: BSD-3-Clause"],
     ["Classifier: License :: OSI Approved :: MIT License",
      "Classifier: License :: OSI Approved :: Apache Software License"],
     [f"License: {HOSTILE}"], []],
)  # fmt: skip
def test_checked_choice_takes_what_licence_of_gives(lines):
    choice = sbom.licence_of(metadata(*lines))
    assert sbom.checked_choice(json.loads(json.dumps(choice))) == choice


@pytest.mark.parametrize(
    "value",
    [[], "MIT", [{"expression": "apache-2.0 OR mit"}],  # not canonical: licence_of never gives it
     [{"expression": "MIT AND"}], [{"expression": ""}], [{"license": {"id": "MIT"}}],
     [{"license": {"name": "MIT\nIndex-Url: http://evil/"}}], [{"license": {"name": " MIT"}}],
     [{"license": {"name": "A" * (sbom.LICENCE_LIMIT + 1)}}], [{"license": {"name": 7}}],
     [{"license": {"name": "MIT"}, "url": "http://evil/"}], [{"expression": "MIT"}, "MIT"],
     [{"expression": "MIT"}, {"expression": "BSD-3-Clause"}],  # one expression at most
     [{"expression": "MIT"}, {"license": {"name": "BSD"}}],
     [{"license": {"name": "MIT"}}, {"license": {"name": "BSD"}}],  # names come sorted
     [{"license": {"name": "MIT"}}, {"license": {"name": "MIT"}}],  # and once each
     [{"license": {"name": f"L{n:03}"}} for n in range(sbom.NAMES_LIMIT + 1)]],
)  # fmt: skip
def test_checked_choice_refuses_what_licence_of_never_gives(value):
    with pytest.raises(ValueError):
        sbom.checked_choice(value)


def test_an_expression_packaging_cannot_parse_is_no_licence_not_a_crash():
    """packaging 26.2 raises KeyError (not InvalidLicenseExpression) for `LicenseRef-x+`: a
    wheel's metadata, or a layer record, must not stop the build with a traceback."""
    assert sbom.spdx_expression("LicenseRef-a+") in ("", "LicenseRef-a+")
    assert sbom.licence_of(metadata("License-Expression: LicenseRef-a+")) in (
        None, [{"expression": "LicenseRef-a+"}]
    )  # fmt: skip

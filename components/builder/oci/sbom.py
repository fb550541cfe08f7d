"""The environment image's bill of materials: a CycloneDX 1.5 JSON document made from the lock.

The lock (PEP 751, `resolution.read_pylock`) names every distribution the image's venv holds,
with its files and their sha256; the document lists each one as a `library` component with its
`pkg:pypi` purl (the purl spec's PyPI type: the name lower-cased, `_` written `-`), the
hashes of its files, one `distribution` external reference per file (URL and hash) and, where
its wheel's core metadata gives one, its licence (`licence_of`; read from the index by
`planning.core_metadata`, the same on every build path). The base image is a `container`
component named by digest (`pkg:oci` purl). The document is deterministic: no timestamp, and
a serial number derived from its content, so a rebuild writes the same bytes.

Sources: CycloneDX 1.5 JSON schema (bom-1.5.schema.json, `licenseChoice`); purl spec
(PURL-TYPES: pypi, oci); core metadata 2.4 and PEP 639 (`License-Expression`, `License`,
`Classifier: License ::`).
"""

from __future__ import annotations

import email.parser
import json
import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

from ..planning.resolution import Distribution

MEDIA_TYPE = "application/vnd.cyclonedx+json"
SPEC_VERSION = "1.5"
# Kept in the image next to the lock (`plan.LOCK_IN_IMAGE`).
SBOM_IN_IMAGE = "/opt/mlflow-env/sbom.cdx.json"
# Its place in a single-layer build's context, beside the lock (`plan.LOCK_FILE`).
SBOM_FILE = "mlflow-steps-lock/sbom.cdx.json"
# A fixed namespace for the document's serial number (uuid5 of its content).
_SERIAL_NAMESPACE = uuid.UUID("6f1d9a4e-2c3b-5e8f-9a7d-4b1c0e2f3a5d")


def pypi_purl(name: str, version: str) -> str:
    """`pkg:pypi/<name>@<version>`, the name normalised as the purl spec's pypi type asks."""
    return f"pkg:pypi/{name.lower().replace('_', '-')}@{version}"


def oci_purl(reference: str, digest: str) -> str:
    """`pkg:oci/<last path component>@sha256%3A<hex>?repository_url=<registry/path>`."""
    without_tag = reference.split("@", 1)[0]
    last = without_tag.rsplit("/", 1)[-1]
    if ":" in last:
        without_tag = without_tag[: -(len(last) - last.index(":"))]
    name = without_tag.rsplit("/", 1)[-1]
    return f"pkg:oci/{name}@{digest.replace(':', '%3A')}?repository_url={without_tag}"


# The longest licence value the document carries; longer ones are cut (a `License` field may
# hold a whole licence text, and a hostile wheel may hold anything).
LICENCE_LIMIT = 200
# Longer `License` fields are licence texts, not names: the classifiers are read instead.
FIELD_LIMIT = 100
# The most licence names a choice read back from a layer record may hold (`checked_choice`).
NAMES_LIMIT = 32
_WHITESPACE = re.compile(r"\s+")


def clean(text: str, limit: int = LICENCE_LIMIT) -> str:
    """`text` as one line: control, format and surrogate characters (Unicode categories Cc, Cf,
    Cs) and runs of whitespace become one space, then cut to `limit` characters."""
    kept = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Cs") else c for c in text)
    return _WHITESPACE.sub(" ", kept).strip()[:limit].strip()


def licence_of(metadata: str) -> list[dict] | None:
    """The CycloneDX 1.5 `licenses` value (`licenseChoice`) for one core-metadata text (a
    wheel's `METADATA`), or None when the metadata gives no licence. First match wins:

    1. `License-Expression` (core metadata 2.4, PEP 639), when it is a valid SPDX expression:
       `[{"expression": <it, canonicalised by packaging>}]` (the schema's one-expression form);
    2. `License`, when it is one short line (a name, not a licence text) and not `UNKNOWN`:
       `[{"license": {"name": <it>}}]`;
    3. every `Classifier: License :: ...` but the bare `OSI Approved`, by its last part:
       `[{"license": {"name": "MIT License"}}, ...]`, sorted, without repeats.

    Names are free text (`name`, never `id`: an `id` must be in the schema's SPDX list). Every
    value is `clean`ed: one line, no control characters, at most `LICENCE_LIMIT` characters.
    Sources: PEP 639; core metadata 2.4; CycloneDX 1.5 bom-1.5.schema.json `licenseChoice`."""
    message = email.parser.Parser().parsestr(metadata, headersonly=True)
    expression = spdx_expression(str(message.get("License-Expression") or ""))
    if expression:
        return [{"expression": expression}]
    field = str(message.get("License") or "").strip()
    if field and "\n" not in field and len(field) <= FIELD_LIMIT:
        name = clean(field)
        if name and name.upper() != "UNKNOWN":
            return [{"license": {"name": name}}]
    names = set()
    for classifier in message.get_all("Classifier") or []:
        parts = [part.strip() for part in str(classifier).split("::")]
        if parts[0] == "License" and len(parts) > 1 and parts[-1] != "OSI Approved":
            name = clean(parts[-1])
            if name:
                names.add(name)
    return [{"license": {"name": name}} for name in sorted(names)] or None


def spdx_expression(text: str) -> str:
    """`text` canonicalised as an SPDX licence expression (packaging.licenses, PEP 639's
    rules); "" when it is empty, too long or not valid."""
    text = text.strip()
    if (
        not text
        or len(text) > LICENCE_LIMIT
        or any(unicodedata.category(c)[0] == "C" for c in text)
    ):
        return ""
    try:
        return canonicalize_license_expression(text)
    except InvalidLicenseExpression:
        return ""
    except Exception:  # packaging 26.2 raises KeyError for `LicenseRef-x+`
        return ""


def checked_choice(value: object) -> list[dict] | None:
    """`value` (JSON, read back from a registry) when it is a `licence_of` answer: None, one
    `{"expression": <canonical SPDX>}`, or 1 to `NAMES_LIMIT` `{"license": {"name": <clean>}}`
    sorted by name, each once (`clean`: one line, at most `LICENCE_LIMIT` characters). Raises
    ValueError otherwise: a value no wheel's metadata could have given never reaches the
    document."""
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > NAMES_LIMIT:
        raise ValueError(f"a licence choice is a list of 1 to {NAMES_LIMIT} items")
    if len(value) == 1 and isinstance(value[0], dict) and set(value[0]) == {"expression"}:
        text = value[0]["expression"]
        if isinstance(text, str) and text and spdx_expression(text) == text:
            return value
        raise ValueError(f"not an SPDX expression in canonical form: {str(text)[:80]!r}")
    names = []
    for item in value:
        named = item.get("license") if isinstance(item, dict) and set(item) == {"license"} else None
        name = named.get("name") if isinstance(named, dict) and set(named) == {"name"} else None
        if not (isinstance(name, str) and name and clean(name) == name):
            raise ValueError(f"not a licence this builder writes: {str(item)[:80]!r}")
        names.append(name)
    if names != sorted(set(names)):
        raise ValueError("licence names are written sorted, each once")
    return value


def licences_in(site_packages: Path) -> dict[str, list[dict]]:
    """`licence_of` by canonical distribution name, read from every `*.dist-info/METADATA`
    under `site_packages` (a venv's site-packages folder)."""
    found: dict[str, list[dict]] = {}
    for metadata in sorted(site_packages.glob("*.dist-info/METADATA")):
        text = metadata.read_text(encoding="utf-8", errors="replace")
        name = email.parser.Parser().parsestr(text, headersonly=True).get("Name", "")
        choice = licence_of(text)
        if name and choice:
            found[name.lower().replace("_", "-").replace(".", "-")] = choice
    return found


def cyclonedx(
    distributions: Iterable[Distribution],
    image: str,
    base_image: str,
    base_digest: str,
    licences: Mapping[str, list[dict]] | None = None,
) -> bytes:
    """The CycloneDX 1.5 JSON document (UTF-8 bytes, keys sorted, one trailing newline) for an
    environment image named `image` (repository:tag; its own digest cannot be inside it) whose
    venv holds `distributions`, built on `base_image` pinned at `base_digest` (`sha256:...`).
    `licences`: `licence_of` by canonical name (`core_metadata.licences`)."""
    licences = licences or {}
    base_ref = f"base-image@{base_digest}"
    components = [
        {
            "type": "container",
            "bom-ref": base_ref,
            "name": base_image.split("@", 1)[0],
            "version": base_digest,
            "purl": oci_purl(base_image, base_digest),
            "hashes": [{"alg": "SHA-256", "content": base_digest.split(":", 1)[1]}],
        }
    ]
    for dist in sorted(distributions, key=lambda d: d.name):
        purl = pypi_purl(dist.name, dist.version)
        component: dict = {
            "type": "library",
            "bom-ref": purl,
            "name": dist.name,
            "version": dist.version,
            "purl": purl,
            "hashes": [
                {"alg": "SHA-256", "content": sha} for sha in sorted({f.sha256 for f in dist.files})
            ],
            "externalReferences": [
                {
                    "type": "distribution",
                    "url": f.url or f.name,
                    "comment": f.name,
                    "hashes": [{"alg": "SHA-256", "content": f.sha256}],
                }
                for f in sorted(dist.files, key=lambda f: f.name)
            ],
        }
        if dist.name in licences:
            component["licenses"] = licences[dist.name]
        if dist.marker:
            component["properties"] = [{"name": "python:marker", "value": dist.marker}]
        components.append(component)
    document = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "mlflow-steps"}]},
            "component": {"type": "container", "bom-ref": "image", "name": image},
        },
        "components": components,
        "dependencies": [
            {"ref": "image", "dependsOn": [c["bom-ref"] for c in components]},
        ],
    }
    body = json.dumps(document, sort_keys=True).encode()
    document["serialNumber"] = f"urn:uuid:{uuid.uuid5(_SERIAL_NAMESPACE, body.decode())}"
    return (json.dumps(document, sort_keys=True, indent=1) + "\n").encode()

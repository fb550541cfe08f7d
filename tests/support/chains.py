"""Tekton Chains' reading of a TaskRun's results (tektoncd/chains: pkg/artifacts/signable.go,
structured.go, pkg/chains/formats/slsa/extract/extract.go), for the type hints the builder
Task uses:

- subjects: results whose names end in `IMAGE_URL` and `IMAGE_DIGEST`, paired by what comes
  before the suffix; both non-empty (trimmed), the digest `sha256:<64 hex>`; the pair is read
  as go-containerregistry's `name.NewDigest("URL@DIGEST")` and the subject is named by the
  reference's repository (tag dropped, Docker Hub names completed);
- inputs (SLSA resolvedDependencies / materials): object results whose names end in
  `ARTIFACT_INPUTS` with non-empty `uri` and a `digest` of `<algorithm>:<hex>` (sha1, sha256,
  sha512). Anything else is skipped, as Chains skips it (a debug log line there).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

HEX = {"sha1": 40, "sha256": 64, "sha512": 128}
DEFAULT_REGISTRY = "index.docker.io"


def parse_digest(digest: str) -> tuple[str, str] | None:
    algorithm, _, hex_part = digest.strip().partition(":")
    algorithm, hex_part = algorithm.strip().lower(), hex_part.strip()
    length = HEX.get(algorithm)
    if length and re.fullmatch(f"[a-f0-9]{{{length}}}", hex_part):
        return algorithm, hex_part
    return None


def repository_name(reference: str) -> str:
    """go-containerregistry's Repository.Name() of `reference` (tag dropped)."""
    first, _, rest = reference.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DEFAULT_REGISTRY, reference
    last = path.rsplit("/", 1)[-1]
    if ":" in last:  # a tag
        path = path[: len(path) - len(last)] + last.split(":", 1)[0]
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    return f"{registry}/{path}"


def subjects(results: Iterable[Mapping[str, Any]]) -> list[tuple[str, dict[str, str]]]:
    """[(name, {"sha256": hex})] from IMAGE_URL / IMAGE_DIGEST pairs."""
    partials: dict[str, dict[str, str]] = {}
    for result in results:
        value = result.get("value")
        if not isinstance(value, str) or not value.strip():
            continue
        for suffix, key in (("IMAGE_URL", "uri"), ("IMAGE_DIGEST", "digest")):
            if result["name"].endswith(suffix):
                partials.setdefault(result["name"][: -len(suffix)], {})[key] = value.strip()
    found = []
    for pair in partials.values():
        if not (pair.get("uri") and pair.get("digest")):
            continue
        parsed = parse_digest(pair["digest"])
        if parsed is None or parsed[0] != "sha256":
            continue  # name.NewDigest takes sha256 only
        base = pair["uri"].split("@", 1)[0]
        found.append((repository_name(base), {"sha256": parsed[1]}))
    return found


def materials(results: Iterable[Mapping[str, Any]]) -> list[tuple[str, dict[str, str]]]:
    """[(uri, {algorithm: hex})] from *ARTIFACT_INPUTS object results."""
    found = []
    for result in results:
        value = result.get("value")
        if not result["name"].endswith("ARTIFACT_INPUTS") or not isinstance(value, dict):
            continue
        parsed = parse_digest(value.get("digest", ""))
        if value.get("uri") and parsed:
            found.append((value["uri"], {parsed[0]: parsed[1]}))
    return found

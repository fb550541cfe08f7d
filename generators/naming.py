"""Each engine's naming convention for the spec's snake_case input names."""

from __future__ import annotations


def tekton_param(name: str) -> str:
    """Tekton catalog style: UPPER_SNAKE (`pull_registry` -> `PULL_REGISTRY`)."""
    return name.upper()


def tekton_result(name: str) -> str:
    """Tekton Chains' type hints (tektoncd/chains docs/slsa-provenance.md): a build Task returns
    IMAGE_URL / IMAGE_DIGEST (the subject), and an input as an object result whose name ends in
    ARTIFACT_INPUTS (`source` -> SOURCE_ARTIFACT_INPUTS)."""
    known = {"image": "IMAGE_URL", "digest": "IMAGE_DIGEST", "source": "SOURCE_ARTIFACT_INPUTS"}
    return known.get(name, name.upper())


def kebab(name: str) -> str:
    """Argo parameters: `pull_registry` -> `pull-registry`."""
    return name.replace("_", "-")

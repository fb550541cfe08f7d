"""Each engine's naming convention for the spec's snake_case input names."""

from __future__ import annotations


def tekton_param(name: str) -> str:
    """Tekton catalog style: UPPER_SNAKE (`pull_registry` -> `PULL_REGISTRY`)."""
    return name.upper()


def tekton_result(name: str) -> str:
    """Build tasks return IMAGE_URL / IMAGE_DIGEST (what Tekton Chains reads)."""
    return {"image": "IMAGE_URL", "digest": "IMAGE_DIGEST"}.get(name, name.upper())


def kebab(name: str) -> str:
    """Argo parameters: `pull_registry` -> `pull-registry`."""
    return name.replace("_", "-")

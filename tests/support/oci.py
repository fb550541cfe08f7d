"""Put tiny images into a real registry over the distribution API (no image tools needed)."""

from __future__ import annotations

import requests

from mlflow_steps.stack.oci import MANIFEST_TYPE, push_blob, push_tiny_image  # noqa: F401


def registry_digest(image: str) -> str:
    """What a plain-http registry serves as the manifest digest of `host/repo:tag`."""
    host, _, rest = image.partition("/")
    repository, _, tag = rest.rpartition(":")
    response = requests.head(
        f"http://{host}/v2/{repository}/manifests/{tag}",
        headers={"Accept": MANIFEST_TYPE},
        timeout=10,
    )
    assert response.status_code == 200, f"{image}: HTTP {response.status_code}"
    return response.headers["Docker-Content-Digest"]


def manifest_and_config(image: str) -> tuple[dict, dict]:
    """The OCI manifest and config of `host/repo:tag` in a plain-http registry."""
    host, _, rest = image.partition("/")
    repository, _, tag = rest.rpartition(":")
    base = f"http://{host}/v2/{repository}"
    manifest = requests.get(
        f"{base}/manifests/{tag}", headers={"Accept": MANIFEST_TYPE}, timeout=10
    ).json()
    config = requests.get(f"{base}/blobs/{manifest['config']['digest']}", timeout=10).json()
    return manifest, config

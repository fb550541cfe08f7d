"""Put tiny images into a real registry over the distribution API (no image tools needed)."""

from __future__ import annotations

import json

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


def pushed_image(image: str) -> dict[str, bytes]:
    """Everything of `host/repo:tag` as the plain-http registry serves it: the manifest, the
    config blob (which holds the history, labels and env) and every layer blob, decompressed
    when gzip- or zstd-compressed. Keys: "manifest", "config", then each layer's digest."""
    import gzip

    host, _, rest = image.partition("/")
    repository, _, tag = rest.rpartition(":")
    base = f"http://{host}/v2/{repository}"
    manifest = requests.get(
        f"{base}/manifests/{tag}", headers={"Accept": MANIFEST_TYPE}, timeout=10
    )
    manifest.raise_for_status()
    parsed = json.loads(manifest.content)
    out = {"manifest": manifest.content}
    out["config"] = requests.get(f"{base}/blobs/{parsed['config']['digest']}", timeout=30).content
    for layer in parsed["layers"]:
        data = requests.get(f"{base}/blobs/{layer['digest']}", timeout=120).content
        if layer["mediaType"].endswith("gzip"):
            data = gzip.decompress(data)
        elif layer["mediaType"].endswith("zstd"):
            import zstandard

            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        out[layer["digest"]] = data
    return out

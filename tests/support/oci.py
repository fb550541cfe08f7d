"""Put tiny images into a real registry over the distribution API (no image tools needed)."""

from __future__ import annotations

import hashlib
import json

import requests

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


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


def push_blob(base: str, repo: str, data: bytes, auth=None) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = requests.post(f"{base}/v2/{repo}/blobs/uploads/", auth=auth, timeout=10)
    start.raise_for_status()
    location = start.headers["Location"]
    if location.startswith("/"):
        location = base + location
    sep = "&" if "?" in location else "?"
    done = requests.put(
        f"{location}{sep}digest={digest}",
        data=data,
        auth=auth,
        timeout=10,
        headers={"Content-Type": "application/octet-stream"},
    )
    done.raise_for_status()
    return digest


def push_tiny_image(host: str, repo: str, tags: list[str], auth=None) -> str:
    """One config blob, one manifest, pushed under every tag; returns the manifest digest."""
    base = f"http://{host}"
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    config_digest = push_blob(base, repo, config, auth)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()
    session = requests.Session()
    for tag in tags:
        reply = session.put(
            f"{base}/v2/{repo}/manifests/{tag}",
            data=manifest,
            auth=auth,
            headers={"Content-Type": MANIFEST_TYPE},
            timeout=10,
        )
        reply.raise_for_status()
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


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

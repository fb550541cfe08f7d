"""Put tiny images into a real registry over the OCI distribution API (no image tools needed):
one config blob and one manifest, under as many tags as asked (the cache-hit benchmark fills a
repository with 1,000 tags this way)."""

from __future__ import annotations

import hashlib
import json

import requests

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


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

"""Two-platform test parts: the debootstrapped amd64 and arm64 Debian 12 bases pushed as one
OCI image index, an index folder serving both platforms' wheels (plus a distribution with an
x86_64 wheel only), and a pushed image's layers extracted to a folder."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

from mlflow_steps.components.builder.registry import RegistryClient
from mlflow_steps.components.builder.registry_push import RegistryWriter, sha256_digest
from mlflow_steps.stack import images as stack_images
from tests.support.images import CACHE, wheelhouse

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
X86_ONLY = "x86only"  # a distribution with a manylinux x86_64 wheel and nothing else


def writer(host: str) -> RegistryWriter:
    return RegistryWriter(RegistryClient(host, insecure=True))


def arm64_layer() -> tuple[Path, str, str]:
    """(gzip path, digest, diff_id) of the arm64 base's one layer, compressed once beside its
    tarball in the test cache."""
    tarball = stack_images.debian_arm64_tarball(CACHE)
    packed = tarball.with_suffix(".tar.gz")
    sums = tarball.with_suffix(".sums.json")
    if not (packed.exists() and sums.exists()):
        diff = hashlib.sha256()
        part = packed.with_suffix(".part")
        with tarball.open("rb") as source, gzip.open(part, "wb", compresslevel=1) as out:
            while chunk := source.read(1 << 20):
                diff.update(chunk)
                out.write(chunk)
        digest = hashlib.sha256()
        with part.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        part.replace(packed)
        sums.write_text(json.dumps({"digest": f"sha256:{digest.hexdigest()}",
                                    "diff_id": f"sha256:{diff.hexdigest()}"}))  # fmt: skip
    found = json.loads(sums.read_text())
    return packed, found["digest"], found["diff_id"]


def push_two_platform_base(host: str, amd64: str, repository: str = "base/debian-multi") -> str:
    """Push the arm64 Debian 12 base (one layer, its config for linux/arm64/v8) and an OCI
    image index of it and the amd64 base `amd64` (host/repository:tag, already in the
    registry) as `<host>/<repository>:bookworm`; returns that reference."""
    client = writer(host)
    amd64_repository, _, amd64_tag = amd64.split("/", 1)[1].rpartition(":")
    data, media_type, amd64_digest = client.get_manifest(amd64_repository, amd64_tag) or (
        b"",
        "",
        "",
    )
    assert data, f"{amd64} is not in the registry"
    manifest = json.loads(data)
    amd64_digest = sha256_digest(data)
    for layer in manifest["layers"]:  # the amd64 base's blobs, into the index's repository
        if not client.mount(repository, layer["digest"], amd64_repository):
            client.ensure_blob(repository, layer["digest"],
                               client.get_blob(amd64_repository, layer["digest"]))  # fmt: skip
    config = manifest["config"]["digest"]
    client.ensure_blob(repository, config, client.get_blob(amd64_repository, config))
    client.put_manifest(repository, amd64_digest, data, media_type)

    packed, digest, diff_id = arm64_layer()
    client.ensure_blob(repository, digest, packed)
    arm_config = json.dumps(
        {
            "architecture": "arm64",
            "os": "linux",
            "variant": "v8",
            "config": {"Env": [f"PATH={DEFAULT_PATH}"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "debootstrap --arch arm64 --foreign; dpkg-deb -x"}],
        },
        sort_keys=True,
    ).encode()
    client.ensure_blob(repository, sha256_digest(arm_config), arm_config)
    arm_manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": sha256_digest(arm_config),
                "size": len(arm_config),
            },
            "layers": [{"mediaType": GZIP_LAYER, "digest": digest, "size": packed.stat().st_size}],
        },
        sort_keys=True,
    ).encode()
    arm_digest = client.put_manifest(
        repository, sha256_digest(arm_manifest), arm_manifest, OCI_MANIFEST
    )
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": media_type,
                    "digest": amd64_digest,
                    "size": len(data),
                    "platform": {"architecture": "amd64", "os": "linux"},
                },
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": arm_digest,
                    "size": len(arm_manifest),
                    "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
                },
            ],
        },
        sort_keys=True,
    ).encode()
    client.put_manifest(repository, "bookworm", index, OCI_INDEX)
    return f"{host}/{repository}:bookworm"


def x86_only_wheel(folder: Path) -> Path:
    """`x86only-1.0-cp311-cp311-manylinux_2_17_x86_64.whl` (a module and its metadata; no
    sdist, no other wheel)."""
    name = f"{X86_ONLY}-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    path = folder / name
    files = {
        f"{X86_ONLY}.py": b"VALUE = 1\n",
        f"{X86_ONLY}-1.0.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {X86_ONLY}\nVersion: 1.0\n".encode()
        ),
        f"{X86_ONLY}-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: false\n"
            b"Tag: cp311-cp311-manylinux_2_17_x86_64\n"
        ),
    }
    record = "".join(f"{n},,\n" for n in files) + f"{X86_ONLY}-1.0.dist-info/RECORD,,\n"
    files[f"{X86_ONLY}-1.0.dist-info/RECORD"] = record.encode()
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


def two_platform_wheelhouse(folder: Path) -> Path:
    """A folder of links to the test wheelhouse, its aarch64 wheels and the x86_64-only
    wheel: what the index serves to the two-platform builds."""
    folder.mkdir(parents=True, exist_ok=True)
    for house in (wheelhouse(), stack_images.aarch64_wheelhouse(CACHE)):
        for wheel in house.glob("*.whl"):
            (folder / wheel.name).symlink_to(wheel)
    x86_only_wheel(folder)
    return folder


def extract_layers(host: str, repository: str, manifest_digest: str, rootfs: Path) -> dict:
    """Every layer of `repository@manifest_digest` applied in order to `rootfs` by GNU tar
    (the builder's layers are multi-member gzip streams, which Python's tarfile stream mode
    does not read past the first member; device nodes left out, no owners); its config."""
    client = writer(host)
    found = client.get_manifest(repository, manifest_digest)
    assert found is not None
    manifest = json.loads(found[0])
    rootfs.mkdir(parents=True, exist_ok=True)
    for layer in manifest["layers"]:
        url = f"{client.base}/v2/{repository}/blobs/{layer['digest']}"
        response = client.send("GET", url, repository, stream=True)
        assert response.status_code == 200, response.status_code
        untar = ["tar", "-xz", "--no-same-owner", "--exclude=./dev/*", "-C", str(rootfs)]
        with response, subprocess.Popen(untar, stdin=subprocess.PIPE) as process:
            assert process.stdin is not None
            for chunk in response.iter_content(1 << 20):
                process.stdin.write(chunk)
            process.stdin.close()
        assert process.returncode == 0, f"tar could not apply {layer['digest']}"
    return json.loads(client.get_blob(repository, manifest["config"]["digest"]))


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)

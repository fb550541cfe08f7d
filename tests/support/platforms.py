"""Two-platform test parts: the debootstrapped amd64 and arm64 Debian 12 bases pushed as one
OCI image index, an index folder serving both platforms' wheels (plus a distribution with an
x86_64 wheel only), and a pushed image's layers extracted to a folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

from mlflow_steps.components.builder.oci.registry import RegistryClient
from mlflow_steps.components.builder.oci.registry_push import RegistryWriter
from mlflow_steps.stack import images as stack_images
from tests.support.images import CACHE

OCI_INDEX = stack_images.OCI_INDEX
X86_ONLY = "x86only"  # a distribution with a manylinux x86_64 wheel and nothing else


def writer(host: str) -> RegistryWriter:
    return RegistryWriter(RegistryClient(host, insecure=True))


def push_two_platform_base(host: str, amd64: str) -> str:
    """The amd64 and arm64 Debian 12 bases as one image index (`images.push_two_platform_base`,
    the arm64 one made and cached in the tests' cache)."""
    return stack_images.push_two_platform_base(host, amd64, CACHE)


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
    """Both platforms' wheels (`images.two_platform_wheelhouse`) and the x86_64-only wheel:
    what the index serves to the two-platform builds."""
    stack_images.two_platform_wheelhouse(folder, CACHE)
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

"""What a build needs when no public registry or index is reachable: base images made here
(a debootstrapped Debian minbase with python3, and a python:3.x-shaped image derived from it)
and a wheelhouse for the local index. Both are cached in a folder the caller names."""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mlflow_steps.components.builder.oci.registry import RegistryClient
from mlflow_steps.components.builder.oci.registry_push import RegistryWriter, sha256_digest
from mlflow_steps.components.processes import Finished, failure, run_logged


def buildah_env() -> dict[str, str]:
    """This process's environment as it is now, with buildah's chroot isolation: read at each
    call, so that a benchmark that points CONTAINERS_STORAGE_CONF at a store of its own after
    this module is imported pushes from that store (pull_and_start.py left its base images in
    the machine's store when this was read once, at import)."""
    return {**os.environ, "BUILDAH_ISOLATION": "chroot"}


BUILDAH_ENV = buildah_env()  # as at import: what the tests give buildah

# Debian's python3 has no `python` command and a PEP 668 marker; this shape has both fixed,
# as the official python:3.x images have.
PYTHON_SHAPE_DOCKERFILE = """\
FROM {base}
RUN ln -s /usr/bin/python3 /usr/local/bin/python \\
 && rm -f /usr/lib/python3.*/EXTERNALLY-MANAGED \\
 && wheel="$(ls /usr/share/python-wheels/pip-*.whl)" \\
 && python3 "$wheel/pip" install --no-index --no-cache-dir "$wheel" && pip --version
"""

# The MLflow the index serves to installs that do not pin one (images, local environments).
PINNED_MLFLOW = "3.18.0"


def machine_mlflow() -> str | None:
    """This machine's MLflow version (`mlflow`, else `mlflow-skinny`); None without one. The
    index serves it too: a local environment for a store this machine's MLflow made is pinned to
    it (components/launcher/local_env.py), whatever MLflow the machine has."""
    for name in ("mlflow", "mlflow-skinny"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


# What the local index serves: the examples (scikit-learn, pandas, MLflow), what MLflow's SQLite
# and PostgreSQL stores need, and what the project's tests and benchmarks build (lightgbm, two
# versions of `six`, the versions tests/cases pin).
WHEELHOUSE_REQUIREMENTS = [
    "scikit-learn==1.9.*",
    "numpy==2.4.*",
    "pandas>=2",
    "lightgbm",
    "psycopg[binary]",
    "uv",
    "installer",  # the builder image's own dependencies (pyproject.toml)
    "isal",
    f"mlflow-skinny=={PINNED_MLFLOW}",
    "six==1.17.0",
    "pip",
    "setuptools",
    "wheel",
    "sqlalchemy",
    "alembic",
]
WHEELHOUSE_EXTRA_NO_DEPS = ["six==1.16.0"]
# Downloaded on their own (two versions of one distribution cannot be resolved together).
WHEELHOUSE_ALSO = sorted({f"mlflow-skinny=={machine_mlflow() or PINNED_MLFLOW}"})


def sh(*argv: str, quiet: bool = False, log_stdout: bool = True, stdin=None) -> Finished:
    """Run `argv` (buildah with chroot isolation). Its log goes to stderr, stdout included
    unless `log_stdout` is false (then dropped), nothing when `quiet`; when it fails, raises
    RuntimeError naming the command and ending with its last lines, shown or not."""
    done = run_logged(
        argv, env=buildah_env(), stdin=stdin, capture_stdout=not log_stdout, quiet=quiet
    )
    if done.returncode != 0:
        raise RuntimeError(failure(f"`{' '.join(argv)}`", done))
    return done


def debian_tarball(cache: Path, suite: str = "bookworm") -> Path:
    """A Debian `suite` minbase root filesystem with python3 (debootstrap, needs root), as a
    tar in `cache`, made once."""
    tarball = cache / f"debian-{suite}-python3.tar"
    if tarball.exists():
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        rootfs = Path(tmp) / "rootfs"
        sh(
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            suite,
            str(rootfs),
            log_stdout=False,
        )
        sh("tar", "-C", str(rootfs), "-cf", str(tarball) + ".part", ".")
        os.replace(str(tarball) + ".part", tarball)
    return tarball


# The arm64 base's packages (debootstrap's first stage only: no binfmt_misc here, so no second
# stage in a chroot); each is unpacked with dpkg-deb, no maintainer script runs.
ARM64_INCLUDE = "python3,python3-venv,ca-certificates"


def debian_arm64_tarball(cache: Path, suite: str = "bookworm") -> Path:
    """A Debian `suite` minbase root filesystem for arm64 with python3, as a tar in `cache`,
    made once: `debootstrap --arch arm64 --foreign` (its first stage: the packages downloaded,
    the required ones unpacked), then every downloaded package unpacked with `dpkg-deb
    --fsys-tarfile | tar -x --keep-directory-symlink` (the merged /usr kept) and debootstrap's
    own files removed. Its binaries run under `qemu-aarch64-static -L ROOT` (user-mode). Needs
    root (device nodes, owners)."""
    tarball = cache / f"debian-{suite}-arm64-python3.tar"
    if tarball.exists():
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        rootfs = Path(tmp) / "rootfs"
        sh(
            "debootstrap", "--arch", "arm64", "--foreign", "--variant=minbase",
            f"--include={ARM64_INCLUDE}", suite, str(rootfs), "http://deb.debian.org/debian",
            log_stdout=False,
        )  # fmt: skip
        archives = rootfs / "var" / "cache" / "apt" / "archives"
        for deb in sorted(archives.glob("*.deb")):
            unpack = f"dpkg-deb --fsys-tarfile {deb} | tar -x --keep-directory-symlink -C {rootfs}"
            sh("sh", "-c", unpack, quiet=True)
            deb.unlink()
        shutil.rmtree(rootfs / "debootstrap", ignore_errors=True)
        if (rootfs / "proc").is_symlink():  # the first stage's stand-in for a mounted /proc
            (rootfs / "proc").unlink()
            (rootfs / "proc").mkdir()
        sh("tar", "-C", str(rootfs), "-cf", str(tarball) + ".part", ".")
        os.replace(str(tarball) + ".part", tarball)
    return tarball


def push_base_images(registry: str, cache: Path) -> dict[str, str]:
    """Push both base shapes to the plain-http `registry` (podman and buildah); returns
    {"debian": reference, "python": reference}."""
    debian = f"{registry}/base/debian:bookworm"
    python = f"{registry}/base/python:3.11"
    with debian_tarball(cache).open("rb") as tar:
        sh("podman", "import", "-", debian, stdin=tar, log_stdout=False)
    sh("podman", "push", "--tls-verify=false", debian, quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Dockerfile").write_text(PYTHON_SHAPE_DOCKERFILE.format(base=debian))
        sh("buildah", "build", "--tls-verify=false", "-t", python, tmp, log_stdout=False)
    sh("buildah", "push", "--tls-verify=false", python, f"docker://{python}", quiet=True)
    return {"debian": debian, "python": python}


def remove_local_images(*refs: str) -> None:
    """Drop images from buildah's local storage (vfs keeps a full copy of each)."""
    if shutil.which("buildah"):
        subprocess.run(["buildah", "rmi", "-f", *refs], capture_output=True, env=buildah_env())


def wheelhouse(cache: Path) -> Path:
    """The wheels of WHEELHOUSE_REQUIREMENTS (with their dependencies, for this machine's
    Python), downloaded once from PyPI with pip into `cache`/wheelhouse-<hash>."""
    key = hashlib.sha256(
        "\n".join(WHEELHOUSE_REQUIREMENTS + WHEELHOUSE_EXTRA_NO_DEPS + WHEELHOUSE_ALSO).encode()
    ).hexdigest()[:12]
    house = cache / f"wheelhouse-{key}"
    if (house / ".complete").exists():
        return house
    house.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "-q", "-d", str(house)]
    also = [[*pip, requirement] for requirement in WHEELHOUSE_ALSO]
    for argv in (
        [*pip, *WHEELHOUSE_REQUIREMENTS],
        [*pip, "--no-deps", *WHEELHOUSE_EXTRA_NO_DEPS],
        *also,
    ):
        done = run_logged(argv)
        if done.returncode != 0:
            raise RuntimeError(failure("downloading the wheelhouse (`pip download`)", done))
    (house / ".complete").touch()
    return house


# The arm64 platform's wheels (the arm64 base is Debian 12: glibc 2.36, CPython 3.11).
# pip's --platform takes each tag as it is (no older glibc implied): every one listed.
AARCH64_PLATFORMS = (
    *(f"manylinux_2_{minor}_aarch64" for minor in range(36, 16, -1)),
    "manylinux2014_aarch64",
)


def aarch64_wheelhouse(cache: Path) -> Path:
    """The aarch64 wheels of the same versions as the wheelhouse's (`wheelhouse(cache)`) wheels
    for this machine (its non-pure ones: the pure ones serve both), downloaded once with `pip
    download --no-deps --only-binary=:all: --platform manylinux_2_NN_aarch64` (NN from 36
    down to 17) `--python-version 3.11` into `cache`/wheelhouse-aarch64-<hash>. A
    version PyPI has no aarch64 wheel of is left out (its index then has none: the build
    fails naming it)."""
    machine = platform.machine()
    pins = sorted(
        "{}=={}".format(*wheel.name.split("-")[:2])
        for wheel in wheelhouse(cache).glob("*.whl")
        if wheel.name.endswith(f"_{machine}.whl")
    )
    key = hashlib.sha256("\n".join([*pins, *AARCH64_PLATFORMS]).encode()).hexdigest()[:12]
    house = cache / f"wheelhouse-aarch64-{key}"
    if (house / ".complete").exists():
        return house
    house.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    pip += [arg for name in AARCH64_PLATFORMS for arg in ("--platform", name)]
    pip += ["--python-version", "3.11", "--implementation", "cp", "-d", str(house)]
    done = run_logged([*pip, *pins])
    if done.returncode != 0:  # one without an aarch64 wheel: each on its own
        for pin in pins:
            run_logged([*pip, pin], quiet=True)
    (house / ".complete").touch()
    return house


OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def arm64_layer(cache: Path) -> tuple[Path, str, str]:
    """(gzip path, digest, diff_id) of the arm64 base's one layer, compressed once beside its
    tarball in `cache`."""
    tarball = debian_arm64_tarball(cache)
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


def push_two_platform_base(
    host: str, amd64: str, cache: Path, repository: str = "base/debian-multi"
) -> str:
    """Push the arm64 Debian 12 base (one layer, its config for linux/arm64/v8) and an OCI
    image index of it and the amd64 base `amd64` (host/repository:tag, already in the
    registry) as `<host>/<repository>:bookworm`; returns that reference."""
    client = RegistryWriter(RegistryClient(host, insecure=True))
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

    packed, digest, diff_id = arm64_layer(cache)
    client.ensure_blob(repository, digest, packed)
    arm_config = json.dumps(
        {
            "architecture": "arm64",
            "os": "linux",
            "variant": "v8",
            "config": {"Env": [f"PATH={DEBIAN_PATH}"]},
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


def two_platform_wheelhouse(folder: Path, cache: Path) -> Path:
    """`folder`, made of links to the wheelhouse and its aarch64 wheels
    (`aarch64_wheelhouse`): an index of both platforms' wheels."""
    folder.mkdir(parents=True, exist_ok=True)
    for house in (wheelhouse(cache), aarch64_wheelhouse(cache)):
        for wheel in house.glob("*.whl"):
            (folder / wheel.name).symlink_to(wheel)
    return folder

"""Cold build of the same requirements: this project's recipe against the seed's recipe
(`pip install --upgrade pip && pip install -r requirements.txt`) on the same base image (the
python:3.x shape: the seed's recipe needs a system pip), the same local index, no layer cache
(all local images removed before each build, the base included; buildah's blob-location
cache removed, so a layer already in the registry under another repository is uploaded again,
as a fresh builder pod uploads it; the disk flushed between builds, untimed). Reports wall
time (build + push) and the compressed size of the pushed image, total and above the base.

The seed's recipe is built two ways with buildah: `build` then `push` (a local copy first, as
a plain buildah script does), and committed straight to the registry (`--tag docker://`, what
`mlflow-steps build` does with buildah, and what Kaniko, the seed's engine, does). Ours is the
whole `mlflow-steps build` process (registry lookup, render, build, digest). The like-for-like
ratio is ours against the seed committed the same way. Runs are interleaved.

    python3 benchmarks/cold_build.py [--runs 3] [--storage-driver vfs|overlay]
        (root, buildah; about 2.5 min a run with vfs)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent

from mlflow_steps.components.builder.build import plan  # noqa: E402
from mlflow_steps.components.builder.planning.options import BuildOptions  # noqa: E402
from mlflow_steps.stack import build_argv as local_build_argv  # noqa: E402
from mlflow_steps.stack import (  # noqa: E402
    images,
    services,
    state_from_env,
)

CODESET = ROOT / "examples" / "sklearn-pip"
ENV = {**os.environ, "BUILDAH_ISOLATION": "chroot"}
STORAGE_CONF = """\
[storage]
driver = "{driver}"
runroot = "/run/mlflow-steps-bench/{driver}"
graphroot = "/var/lib/mlflow-steps-bench/{driver}"
"""
SEED_DOCKERFILE = """\
FROM {base}
ARG PIP_INDEX_URL
COPY requirements.txt /tmp/requirements.txt
RUN pip install --upgrade pip && pip install -r /tmp/requirements.txt
"""


def compressed_size(host: str, repo: str, tag: str) -> int:
    manifest = requests.get(
        f"http://{host}/v2/{repo}/manifests/{tag}",
        headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, "
            "application/vnd.docker.distribution.manifest.v2+json"
        },
        timeout=10,
    ).json()
    return sum(layer["size"] for layer in manifest["layers"])


# Where buildah (containers/image) remembers which repositories hold which blobs, to mount a
# blob from one repository into another instead of uploading it. A builder pod starts without it.
BLOB_INFO_CACHE = Path("/var/lib/containers/cache/blob-info-cache-v1.boltdb")


def clean_local_storage() -> None:
    """Start the next build as a fresh builder pod would: no local image (the base included),
    no memory of where blobs are, and no write-back still pending from the previous build (the
    disk is flushed, untimed, so that one variant's writes are not charged to the next)."""
    subprocess.run(["buildah", "rm", "--all"], capture_output=True, env=ENV)
    subprocess.run(["buildah", "rmi", "--all", "--force"], capture_output=True, env=ENV)
    BLOB_INFO_CACHE.unlink(missing_ok=True)
    os.sync()


def work_folder(benchmark: str, driver: str) -> Path:
    """A fresh folder for one benchmark, its buildah store on `driver` (root and buildah)."""
    if os.geteuid() != 0 or not shutil.which("buildah"):
        sys.exit(f"{benchmark}: needs root and buildah (bash scripts/setup-machine)")
    work = Path(tempfile.mkdtemp(prefix="mlflow-steps-bench-"))
    use_storage(driver, work)
    return work


def use_storage(driver: str, work: Path) -> None:
    """Every buildah call of this benchmark (the builder's too) uses `driver`, in its own store."""
    conf = work / f"storage-{driver}.conf"
    conf.write_text(STORAGE_CONF.format(driver=driver))
    ENV["CONTAINERS_STORAGE_CONF"] = str(conf)


@contextlib.contextmanager
def container(image: str) -> Iterator[str]:
    """A new working container of `image` (pulled if missing), removed afterwards."""
    ctr = subprocess.run(
        ["buildah", "from", "--quiet", "--tls-verify=false", image],
        capture_output=True, text=True, env=ENV, check=True,
    ).stdout.split()[-1]  # fmt: skip
    try:
        yield ctr
    finally:
        subprocess.run(["buildah", "rm", ctr], capture_output=True, env=ENV)


def buildah(*argv: str) -> None:
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(["buildah", *argv], check=True, env=ENV, **quiet)  # type: ignore[call-overload]


def seed_build(host: str, base: str, index: str, requirements: bytes, repo: str, direct: bool):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Dockerfile").write_text(SEED_DOCKERFILE.format(base=base))
        (Path(tmp) / "requirements.txt").write_bytes(requirements)
        ref = f"{host}/{repo}:r"
        build = ["build", "--tls-verify=false", "--format=oci", "--build-arg"]
        build += [f"PIP_INDEX_URL={index}"]
        start = time.perf_counter()
        if direct:
            buildah(*build, f"--tag=docker://{ref}", tmp)
        else:
            buildah(*build, f"--tag={ref}", tmp)
            buildah("push", "--tls-verify=false", ref, f"docker://{ref}")
        return time.perf_counter() - start


def ours_build(host: str, base: str, index: str, repo: str, output: Path, *extra: str) -> float:
    argv = local_build_argv(
        CODESET, host, base=base, index_url=index, repository=repo, output=output
    )
    start = time.perf_counter()
    subprocess.run(
        [*argv, *extra], check=True, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start


VARIANTS = {  # name: (how it is built, extra flags of ours)
    "seed, build then push": ("seed", []),
    "seed, committed to the registry": ("seed-direct", []),
    # One layer, as before per-package layering (benchmarks/layered_build.py measures that).
    "mlflow-steps build (bytecode, the default)": ("ours", ["--layering=single"]),
    "mlflow-steps build --compile-bytecode=false": (
        "ours",
        ["--layering=single", "--compile-bytecode=false"],
    ),
}
LIKE_FOR_LIKE = "seed, committed to the registry"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--storage-driver", default="vfs", choices=["vfs", "overlay"])
    args = parser.parse_args()
    work = work_folder("cold_build", args.storage_driver)
    registry = services.start_registry(work / "registry")
    index = services.start_index(images.wheelhouse(state_from_env() / "cache"), work / "index")
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    sizes: dict[str, int] = {}
    try:
        base = images.push_base_images(registry.host, state_from_env() / "cache")["python"]
        index_url = index.extra["url"]
        options = BuildOptions(
            registry=registry.host,
            pull_registry="",
            insecure=True,
            base_image=base,
            pip_index_url=index_url,
        )
        recipe = plan(CODESET, options).recipe
        assert recipe is not None
        requirements = recipe.files["mlflow-steps/requirements.txt"]  # the very same packages
        for run in range(args.runs):
            for number, (name, (kind, extra)) in enumerate(VARIANTS.items()):
                clean_local_storage()
                repo = f"v{number}/run{run}"
                if kind == "ours":
                    out = work / f"v{number}.image"
                    times[name].append(
                        ours_build(registry.host, base, index_url, repo, out, *extra)
                    )
                    tag = out.read_text().rpartition(":")[2]  # as built, not recomputed
                else:
                    direct = kind == "seed-direct"
                    times[name].append(
                        seed_build(registry.host, base, index_url, requirements, repo, direct)
                    )
                    tag = "r"
                sizes[name] = compressed_size(registry.host, repo, tag)
                print(f"run {run + 1}: {name}: {times[name][-1]:.1f} s", flush=True)
        base_size = compressed_size(registry.host, "base/python", "3.11")
    finally:
        clean_local_storage()
        index.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"requirements: {requirements.decode().split()}")
    print(
        f"storage driver {args.storage_driver}; runs each: {args.runs} (interleaved; all local "
        "images removed before every build; build + push)"
    )
    like = statistics.median(times[LIKE_FOR_LIKE])
    plain = statistics.median(times["seed, build then push"])
    for name in VARIANTS:
        report(name, times[name], sizes[name], base_size)
        if VARIANTS[name][0] == "ours":
            ratio = statistics.median(times[name]) / like
            print(
                f"    time ratio {ratio:.2f} like for like "
                f"({statistics.median(times[name]) / plain:.2f} against build then push), "
                f"size ratio {sizes[name] / sizes[LIKE_FOR_LIKE]:.2f}"
            )


def report(name: str, times: list[float], size: int, base_size: int) -> None:
    mib = 1024 * 1024
    print(
        f"{name:40} {statistics.median(times):6.1f} s  image {size / mib:6.1f} MiB "
        f"(+{(size - base_size) / mib:.1f} over base)  runs {[round(t, 1) for t in times]}"
    )


if __name__ == "__main__":
    main()

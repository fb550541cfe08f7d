"""Cold build of the same requirements: this project's recipe against the seed's recipe
(`pip install --upgrade pip && pip install -r requirements.txt`) on the same base image (the
python:3.x shape: the seed's recipe needs a system pip), the same local index, no layer cache
(all local images removed before each build). Reports wall time (build + push) and the
compressed size of the pushed image, total and above the base.

    python3 benchmarks/cold_build.py [--runs 2]      (root, buildah; a few minutes)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlflow_steps.components.builder.build import plan  # noqa: E402
from mlflow_steps.components.builder.options import BuildOptions  # noqa: E402
from tests.support import images, services  # noqa: E402
from tests.support.builds import local_build_argv  # noqa: E402

CODESET = ROOT / "examples" / "sklearn-pip"
ENV = {**os.environ, "BUILDAH_ISOLATION": "chroot"}
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


def clean_local_storage() -> None:
    subprocess.run(["buildah", "rm", "--all"], capture_output=True, env=ENV)
    subprocess.run(["buildah", "rmi", "--all", "--force"], capture_output=True, env=ENV)


def seed_build(host: str, base: str, index: str, requirements: bytes, tag: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Dockerfile").write_text(SEED_DOCKERFILE.format(base=base))
        (Path(tmp) / "requirements.txt").write_bytes(requirements)
        ref = f"{host}/seed/trainer:{tag}"
        start = time.perf_counter()
        subprocess.run(
            [
                "buildah",
                "build",
                "--tls-verify=false",
                "--build-arg",
                f"PIP_INDEX_URL={index}",
                "-t",
                ref,
                tmp,
            ],
            check=True,
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        subprocess.run(
            ["buildah", "push", "--tls-verify=false", ref, f"docker://{ref}"],
            check=True,
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("buildah"):
        sys.exit("cold_build: needs root and buildah (bash scripts/setup-machine)")
    work = Path(tempfile.mkdtemp(prefix="mlflow-steps-bench-"))
    registry = services.start_registry(work / "registry")
    index = services.start_index(images.wheelhouse(), work / "index")
    try:
        base = images.push_base_images(registry.host)["python"]
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
        times: dict[str, list[float]] = {"seed": [], "ours": [], "ours+pyc": []}
        flags = {"ours": [], "ours+pyc": ["--compile-bytecode"]}
        sizes: dict[str, int] = {}
        for run in range(args.runs):
            clean_local_storage()
            times["seed"].append(seed_build(registry.host, base, index_url, requirements, "r"))
            for name, extra in flags.items():
                clean_local_storage()
                repo = f"{name.replace('+', '-')}/run{run}"
                out = work / f"{name}.image"
                times[name].append(ours_build(registry.host, base, index_url, repo, out, *extra))
                tag = out.read_text().rpartition(":")[2]  # as built, not recomputed
                sizes[name] = compressed_size(registry.host, repo, tag)
        base_size = compressed_size(registry.host, "base/python", "3.11")
        sizes["seed"] = compressed_size(registry.host, "seed/trainer", "r")
    finally:
        index.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"requirements: {requirements.decode().split()}")
    print(f"runs each: {args.runs} (all local images removed before every build; build + push)")
    seed_t = statistics.median(times["seed"])
    for name in ("seed", "ours", "ours+pyc"):
        report(f"{name:8}", times[name], sizes[name], base_size)
        if name != "seed":
            ratio = statistics.median(times[name]) / seed_t
            print(f"          time ratio {ratio:.2f}, size ratio {sizes[name] / sizes['seed']:.2f}")


def report(name: str, times: list[float], size: int, base_size: int) -> None:
    mib = 1024 * 1024
    print(
        f"{name} : {statistics.median(times):6.1f} s  image {size / mib:6.1f} MiB "
        f"(+{(size - base_size) / mib:.1f} over base)  runs {[round(t, 1) for t in times]}"
    )


if __name__ == "__main__":
    main()

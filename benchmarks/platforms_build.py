"""A two-platform engine-less build (`--platforms linux/amd64,linux/arm64`) against a
one-platform one (`--engine none`, the base's own platform), on the wine-like sklearn stack
(examples/sklearn-pip), on the debootstrapped Debian 12 bases pushed as one image index.

Each run, interleaved, each build cold: a namespace of its own in one local registry (an empty
layer cache) and an empty builder cache (XDG_CACHE_HOME: the bases' layers are read again).

    python3 benchmarks/platforms_build.py [--runs 3]
        (root, debootstrap and buildah; the bases and wheels are cached in the stack's
        state folder, made the first time; about 4 min a run on 2 cores)
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mlflow_steps.stack import build_argv, images, services, state_from_env  # noqa: E402

EXAMPLE = HERE.parent / "examples" / "sklearn-pip"
CASES = {
    "one platform (the base's own)": "",
    "two platforms (amd64, arm64)": "linux/amd64,linux/arm64",
}


def build(host: str, base: str, index: str, repo: str, platforms: str, work: Path) -> float:
    out = work / f"{repo.replace('/', '-')}.image"
    argv = build_argv(EXAMPLE, host, base=base, index_url=index, repository=repo, output=out)
    argv[argv.index("--engine") + 1] = "none"
    if platforms:
        argv += ["--platforms", platforms]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "XDG_CACHE_HOME": cache}
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    for line in done.stderr.splitlines():  # the phases, for the record
        if line.startswith(("engine-less: uploaded", "platforms: image index")):
            print(f"    {repo}: {line.split(';', 1)[1].strip()}", flush=True)
    return took


def storage(path: Path) -> str:
    done = subprocess.run(["df", "-T", str(path)], capture_output=True, text=True)
    fields = done.stdout.splitlines()[-1].split() if done.returncode == 0 else ["?", "?"]
    return f"registry storage: {path} ({fields[1]} filesystem, {fields[0]})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlflow-steps-bench-platforms-"))
    registry = services.start_registry(work / "registry")
    cache = state_from_env() / "cache"
    house = images.two_platform_wheelhouse(work / "wheels", cache)
    index = services.start_index(house, work / "index")
    times: dict[str, list[float]] = {}
    loads = [os.getloadavg()[0]]
    try:
        host, url = registry.host, index.extra["url"]
        amd64 = images.push_base_images(host, cache)["debian"]
        base = images.push_two_platform_base(host, amd64, cache)
        for run in range(args.runs):
            for number, (name, platforms) in enumerate(CASES.items()):
                took = build(host, base, url, f"p{run}n{number}/env", platforms, work)
                times.setdefault(name, []).append(took)
                loads.append(os.getloadavg()[0])
                print(f"run {run + 1}: {name}: {took:.1f} s", flush=True)
    finally:
        index.stop()
        registry.stop()
        images.remove_local_images(f"{registry.host}/base/debian:bookworm",
                                   f"{registry.host}/base/python:3.11")  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{storage(Path(tempfile.gettempdir()))}; {os.cpu_count()} cores; load average "
          f"(1 min) {min(loads):.1f} to {max(loads):.1f}; runs: {args.runs}, interleaved, "
          "cold; medians (min)")  # fmt: skip
    for name, values in times.items():
        print(f"{name:34} {statistics.median(values):6.1f} s  (min {min(values):.1f})  "
              f"{[round(v, 1) for v in values]}")  # fmt: skip
    one, two = (statistics.median(values) for values in times.values())
    print(f"two platforms / one platform: {two / one:.2f}")


if __name__ == "__main__":
    main()

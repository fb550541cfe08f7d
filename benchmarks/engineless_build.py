"""The engine-less build (`--engine none`) against today's per-package build with buildah, on
the wine-like sklearn stack (examples/sklearn-pip plus six, bumped 1.16.0 -> 1.17.0), on the
debootstrapped Debian base.

Each run, interleaved, each build in a namespace of its own in one local registry:

1. buildah, cold: the previous environment (six 1.16.0) into an empty namespace, from a fresh
   store (no local image, the base included; benchmarks/cold_build.py);
2. buildah, bump: the bumped environment into the same namespace, from a fresh store;
3. engine-less, cold: the previous environment into an empty namespace, with an empty
   builder cache (XDG_CACHE_HOME: the base's layers are read over HTTP again);
4. engine-less, bump (fresh pod): the bumped environment, the builder cache empty again;
5. engine-less, bump (kept cache): the same bump into a third namespace prepared with the
   previous environment, the base's layer summaries kept from step 4.

    python3 benchmarks/engineless_build.py [--runs 5] [--storage-driver overlay|vfs]
        (root and buildah for the buildah builds; about 2 min a run)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import cold_build  # noqa: E402

from mlflow_steps.stack import build_argv as local_build_argv  # noqa: E402
from mlflow_steps.stack import images, services, state_from_env  # noqa: E402

EXAMPLE = HERE.parent / "examples" / "sklearn-pip"


def codeset(work: Path, six: str) -> Path:
    root = work / f"sklearn-six-{six}"
    if not root.exists():
        shutil.copytree(EXAMPLE, root)
        with (root / "requirements.txt").open("a") as handle:
            handle.write(f"six=={six}\n")
    return root


def build(path: Path, host: str, base: str, index: str, repo: str, engine: str,
          cache: Path | None = None) -> float:  # fmt: skip
    out = path.parent / f"{repo.replace('/', '-')}.image"
    argv = local_build_argv(path, host, base=base, index_url=index, repository=repo, output=out)
    argv[argv.index("--engine") + 1] = engine
    env = dict(cold_build.ENV)
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    for line in done.stderr.splitlines():  # the phases, for the record
        if line.startswith(("per-package layers: uploaded", "engine-less: uploaded")):
            print(f"    {repo}: {line.split(';', 1)[1].strip()}", flush=True)
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--storage-driver", default="vfs", choices=["vfs", "overlay"])
    args = parser.parse_args()
    work = cold_build.work_folder("engineless_build", args.storage_driver)
    registry = services.start_registry(work / "registry")
    index = services.start_index(images.wheelhouse(state_from_env() / "cache"), work / "index")
    times: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        times.setdefault(name, []).append(seconds)
        print(f"run {run + 1}: {name}: {seconds:.1f} s", flush=True)

    try:
        host, url = registry.host, index.extra["url"]
        base = images.push_base_images(host, state_from_env() / "cache")["debian"]
        before, after = codeset(work, "1.16.0"), codeset(work, "1.17.0")
        for run in range(args.runs):
            cold_build.clean_local_storage()
            record("buildah, cold", build(before, host, base, url, f"b{run}/env", "buildah"))
            cold_build.clean_local_storage()
            record("buildah, bump", build(after, host, base, url, f"b{run}/env", "buildah"))
            cold_build.clean_local_storage()
            with tempfile.TemporaryDirectory() as cache:
                took = build(before, host, base, url, f"n{run}/env", "none", Path(cache))
                record("engine-less, cold", took)
            with tempfile.TemporaryDirectory() as cache:
                took = build(after, host, base, url, f"n{run}/env", "none", Path(cache))
                record("engine-less, bump (fresh pod)", took)
                build(before, host, base, url, f"k{run}/env", "none", Path(cache))
                took = build(after, host, base, url, f"k{run}/env", "none", Path(cache))
                record("engine-less, bump (kept cache)", took)
    finally:
        cold_build.clean_local_storage()
        index.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nstorage driver {args.storage_driver} (buildah builds); runs: {args.runs}, "
          "interleaved; medians (min)")  # fmt: skip
    for name, values in times.items():
        print(f"{name:34} {statistics.median(values):6.1f} s  (min {min(values):.1f})  "
              f"{[round(v, 1) for v in values]}")  # fmt: skip
    cold = statistics.median(times["engine-less, cold"])
    print(
        f"engine-less cold / buildah cold: {cold / statistics.median(times['buildah, cold']):.2f}"
    )


if __name__ == "__main__":
    main()

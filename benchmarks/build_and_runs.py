"""One build + 10 runs: what a user pays over the life of an environment, not one figure.

For each variant: a cold build and push (all local images removed first, the base included,
as benchmarks/cold_build.py), then 10 runs of the example's entry point command
(`python train.py ...`: trains, logs a model to a real MLflow tracking server), each in a new
container of the pushed image, as each runtime step starts a new container. A run is timed
from `buildah run` to its exit (the container is created beforehand, untimed: on a cluster
that is the node's work, cheap with overlay). Variants: the seed's recipe (pip, which compiles
bytecode by default) and with `--no-compile`; ours with bytecode (the default) and without.
Same base (python:3.x shape), same index, same requirements; interleaved; medians and minima.

    python3 benchmarks/build_and_runs.py [--repeats 5] [--runs 10] [--storage-driver overlay]
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

import cold_build  # noqa: E402

from mlflow_steps.components.builder.build import plan  # noqa: E402
from mlflow_steps.components.builder.planning.options import BuildOptions  # noqa: E402
from mlflow_steps.stack import (  # noqa: E402
    images,
    services,
    state_from_env,
)

SEED_NO_COMPILE = cold_build.SEED_DOCKERFILE.replace(
    "pip install -r /tmp/requirements.txt", "pip install --no-compile -r /tmp/requirements.txt"
)
VARIANTS = {  # name: (kind, extra flags of ours, seed Dockerfile)
    "seed (pip compiles)": ("seed", [], cold_build.SEED_DOCKERFILE),
    "seed, pip --no-compile": ("seed", [], SEED_NO_COMPILE),
    # One layer, as these figures were taken before per-package layering.
    "mlflow-steps (bytecode, default)": ("ours", ["--layering=single"], ""),
    "mlflow-steps --compile-bytecode=false": (
        "ours",
        ["--layering=single", "--compile-bytecode=false"],
        "",
    ),
}
COMMAND = ["python", "train.py", "--alpha", "0.5"]


def one_run(image: str, tracking: str) -> float:
    with cold_build.container(image) as ctr:
        argv = ["buildah", "run", "--isolation", "chroot", "-v", f"{cold_build.CODESET}:/project"]
        argv += ["--workingdir", "/project", "--env", f"MLFLOW_TRACKING_URI={tracking}"]
        argv += ["--env", "GIT_PYTHON_REFRESH=quiet", ctr, "--", *COMMAND]
        start = time.perf_counter()
        subprocess.run(argv, env=cold_build.ENV, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--storage-driver", default="overlay", choices=["vfs", "overlay"])
    args = parser.parse_args()
    work = cold_build.work_folder("build_and_runs", args.storage_driver)
    registry = services.start_registry(work / "registry")
    index = services.start_index(images.wheelhouse(state_from_env() / "cache"), work / "index")
    tracking = services.start_tracking_server(work / "tracking")
    totals: dict[str, list[float]] = {name: [] for name in VARIANTS}
    builds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    runs: dict[str, list[float]] = {name: [] for name in VARIANTS}
    try:
        base = images.push_base_images(registry.host, state_from_env() / "cache")["python"]
        index_url = index.extra["url"]
        options = BuildOptions(
            registry=registry.host, pull_registry="", insecure=True, base_image=base,
            pip_index_url=index_url,
        )  # fmt: skip
        recipe = plan(cold_build.CODESET, options).recipe
        assert recipe is not None
        requirements = recipe.files["mlflow-steps/requirements.txt"]
        for repeat in range(args.repeats):
            for number, (name, (kind, extra, seed_file)) in enumerate(VARIANTS.items()):
                cold_build.clean_local_storage()
                repo = f"b{number}/r{repeat}"
                if kind == "ours":
                    out = work / f"b{number}.image"
                    build = cold_build.ours_build(registry.host, base, index_url, repo, out, *extra)
                    image = out.read_text()
                else:
                    build = seed_build(
                        registry.host, base, index_url, requirements, repo, seed_file
                    )
                    image = f"{registry.host}/{repo}:r"
                cold_build.clean_local_storage()  # the runs pull the pushed image, as a node does
                timings = [one_run(image, tracking.extra["url"]) for _ in range(args.runs)]
                builds[name].append(build)
                runs[name].extend(timings)
                totals[name].append(build + sum(timings))
                print(
                    f"repeat {repeat + 1}: {name}: build {build:.1f} s, runs "
                    f"{[round(t, 1) for t in timings]}, total {totals[name][-1]:.1f} s",
                    flush=True,
                )
    finally:
        cold_build.clean_local_storage()
        tracking.stop()
        index.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"storage driver {args.storage_driver}; {args.repeats} repeats, interleaved; "
        f"one cold build + {args.runs} runs of `{' '.join(COMMAND)}`, each in a new container"
    )
    for name in VARIANTS:
        print(
            f"{name:40} total median {statistics.median(totals[name]):6.1f} s "
            f"(min {min(totals[name]):.1f}); build median {statistics.median(builds[name]):.1f} s; "
            f"run median {statistics.median(runs[name]):.2f} s (min {min(runs[name]):.2f})"
        )


def seed_build(host: str, base: str, index: str, requirements: bytes, repo: str, dockerfile: str):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Dockerfile").write_text(dockerfile.format(base=base))
        (Path(tmp) / "requirements.txt").write_bytes(requirements)
        argv = ["build", "--tls-verify=false", "--format=oci", "--build-arg"]
        argv += [f"PIP_INDEX_URL={index}", f"--tag=docker://{host}/{repo}:r", tmp]
        start = time.perf_counter()
        cold_build.buildah(*argv)
        return time.perf_counter() - start


if __name__ == "__main__":
    main()

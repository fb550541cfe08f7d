"""The engine-less build (`--engine none`) against today's per-package build with buildah, on
the wine-like sklearn stack (examples/sklearn-pip plus six, bumped 1.16.0 -> 1.17.0), on the
debootstrapped Debian base: issue 24's targets table.

Each run, interleaved, each build in a namespace of its own in one local registry:

1. buildah, cold: the previous environment (six 1.16.0) into an empty namespace, from a fresh
   store (no local image, the base included; benchmarks/cold_build.py);
2. buildah, bump: the bumped environment into the same namespace, from a fresh store;
3. engine-less, cold: the previous environment into an empty namespace, with an empty
   builder cache (XDG_CACHE_HOME: the base's layers are read over HTTP again);
4. engine-less, bump (fresh pod): the bumped environment, the builder cache empty again;
5. engine-less, bump (kept cache): the same bump into a third namespace prepared with the
   previous environment, the base's layer summaries kept from step 4;
6. engine-less, cache hit: the bumped environment again (its tag is there: nothing to build),
   with the registry requests it made, read from the registry's access log.

The CLI runs with its modules' bytecode, as after a wheel install: PYTHONDONTWRITEBYTECODE is
removed from its environment (this project's test machine sets it, and every CLI start and
every worker process would compile the CLI's modules) and one untimed build runs first.
Each line prints the 1-minute load average when the build ended: the machine may be shared.

    python3 benchmarks/engineless_build.py [--runs 5] [--storage-driver overlay|vfs]
        [--cases buildah,cold,bump,hit]
        (root and buildah for the buildah builds; about 3 min a run)

`--cases` runs only some of them: `buildah` (steps 1-2), `cold` (3), `bump` (4-5), `hit` (6,
with the preparation of step 5). Each line also gives the CPU seconds (user + system) of the
build's process and everything it ran (its workers, uv, the bytecode compiler): on a shared
machine they vary less than the wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
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
CASES = ("buildah", "cold", "bump", "hit")


def codeset(work: Path, six: str) -> Path:
    root = work / f"sklearn-six-{six}"
    if not root.exists():
        shutil.copytree(EXAMPLE, root)
        with (root / "requirements.txt").open("a") as handle:
            handle.write(f"six=={six}\n")
    return root


def build(path: Path, host: str, base: str, index: str, repo: str, engine: str,
          cache: Path | None = None) -> tuple[float, float]:  # fmt: skip
    """(wall seconds, CPU seconds of the build and its child processes)."""
    out = path.parent / f"{repo.replace('/', '-')}.image"
    argv = local_build_argv(path, host, base=base, index_url=index, repository=repo, output=out)
    argv[argv.index("--engine") + 1] = engine
    env = dict(cold_build.ENV)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    for line in done.stderr.splitlines():  # the phases, for the record
        if line.startswith(("per-package layers: uploaded", "engine-less: uploaded")):
            print(f"    {repo}: {line.split(';', 1)[1].strip()}", flush=True)
    return took, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--storage-driver", default="vfs", choices=["vfs", "overlay"])
    # The seed's full rebuild of the bumped environment (benchmarks/layered_build.py, a quiet
    # machine): what the cold target is a fraction of.
    parser.add_argument("--seed-seconds", type=float, default=43.9)
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated, of {', '.join(CASES)} (default: all)")  # fmt: skip
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    if not cases <= set(CASES):
        parser.error(f"--cases: unknown {', '.join(sorted(cases - set(CASES)))}")
    work = cold_build.work_folder("engineless_build", args.storage_driver)
    registry = services.start_registry(work / "registry")
    index = services.start_index(images.wheelhouse(state_from_env() / "cache"), work / "index")
    times: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    loads: list[float] = []
    requests: list[int] = []
    pushed: dict[str, str] = {}

    def record(name: str, measured: tuple[float, float]) -> None:
        seconds, cpu = measured
        times.setdefault(name, []).append(seconds)
        cpus.setdefault(name, []).append(cpu)
        loads.append(os.getloadavg()[0])
        print(f"run {run + 1}: {name}: {seconds:.2f} s, {cpu:.1f} CPU s "
              f"(load {loads[-1]:.1f})", flush=True)  # fmt: skip

    try:
        host, url = registry.host, index.extra["url"]
        pushed = images.push_base_images(host, state_from_env() / "cache")
        base = pushed["debian"]
        before, after = codeset(work, "1.16.0"), codeset(work, "1.17.0")
        with tempfile.TemporaryDirectory() as cache:  # writes the CLI's bytecode; untimed
            build(before, host, base, url, "warm/env", "none", Path(cache))
        for run in range(args.runs):
            if "buildah" in cases:
                cold_build.clean_local_storage()
                record("buildah, cold", build(before, host, base, url, f"b{run}/env", "buildah"))
                cold_build.clean_local_storage()
                record("buildah, bump", build(after, host, base, url, f"b{run}/env", "buildah"))
                cold_build.clean_local_storage()
            if "cold" in cases:
                with tempfile.TemporaryDirectory() as cache:
                    took = build(before, host, base, url, f"n{run}/env", "none", Path(cache))
                    record("engine-less, cold", took)
            if "bump" in cases:
                with tempfile.TemporaryDirectory() as cache:
                    if "cold" not in cases:  # the namespace holds the previous environment
                        build(before, host, base, url, f"n{run}/env", "none", Path(cache))
                with tempfile.TemporaryDirectory() as cache:
                    took = build(after, host, base, url, f"n{run}/env", "none", Path(cache))
                    record("engine-less, bump (fresh pod)", took)
            if cases & {"bump", "hit"}:
                with tempfile.TemporaryDirectory() as cache:
                    build(before, host, base, url, f"k{run}/env", "none", Path(cache))
                    took = build(after, host, base, url, f"k{run}/env", "none", Path(cache))
                    if "bump" in cases:
                        record("engine-less, bump (kept cache)", took)
                    if "hit" in cases:
                        seen = len(registry.requests_seen())
                        took = build(after, host, base, url, f"k{run}/env", "none", Path(cache))
                        record("engine-less, cache hit", took)
                        time.sleep(0.2)  # the registry's access log flushed
                        requests.append(len(registry.requests_seen()) - seen)
    finally:
        cold_build.clean_local_storage()
        if pushed:  # the local copies push_base_images made
            images.remove_local_images(*pushed.values())
        index.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nstorage driver {args.storage_driver} (buildah builds); runs: {args.runs}, "
          f"interleaved; medians (min); 1-min load average {min(loads):.1f} to "
          f"{max(loads):.1f} (median {statistics.median(loads):.1f}) on {os.cpu_count()} "
          "cores")  # fmt: skip
    for name, values in times.items():
        print(f"{name:34} {statistics.median(values):6.2f} s  (min {min(values):.2f})  "
              f"{[round(v, 2) for v in values]}; CPU s median "
              f"{statistics.median(cpus[name]):.1f} (min {min(cpus[name]):.1f})")  # fmt: skip
    if requests:
        print(f"cache hit, registry requests per run: {sorted(set(requests))}")
    if "engine-less, cold" not in times:
        return
    cold = statistics.median(times["engine-less, cold"])
    if "buildah, cold" in times:
        ratio = cold / statistics.median(times["buildah, cold"])
        print(f"engine-less cold / buildah cold: {ratio:.2f}")
    fastest = min(times["engine-less, cold"])
    print(f"engine-less cold / the seed's full rebuild ({args.seed_seconds} s): "
          f"{cold / args.seed_seconds:.2f} (min {fastest / args.seed_seconds:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()

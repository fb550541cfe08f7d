"""Per-package layering against `single` and the seed's recipe, on the wine-like sklearn stack
(examples/sklearn-pip: scikit-learn, pandas, mlflow-skinny) plus six, bumped 1.16.0 -> 1.17.0,
on the python:3.x-shaped base (the seed's recipe needs a system pip).

Each run, interleaved, every build starting as a fresh builder pod (all local images removed,
the base included, and buildah's blob-location cache; see benchmarks/cold_build.py), each in a
namespace of its own in one local registry (so no run reuses another's layers):

1. seed: the seed's recipe (pip) builds the bumped environment, committed to the registry:
   the seed's full rebuild, and its cold build;
2. single: `mlflow-steps build --layering single` of the bumped environment (nothing of the
   previous image is reusable): today's rebuild, and the single cold build;
3. per-package, cold: the previous environment (six 1.16.0) into an empty namespace;
4. per-package, bump: the bumped environment into the same namespace; the bytes it uploaded are
   read from the registry's own access log (the blobs PUT), with each blob's size;
5. pull: a fresh store pulls the previous image (untimed), then the bumped one (timed); the
   blobs it downloaded are read from the registry's log.

    python3 benchmarks/layered_build.py [--runs 5] [--storage-driver overlay|vfs]
        (root, buildah; about 5 min a run; with vfs the pulls of 55-layer images take tens of
        GB, one full copy of the tree per layer)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import cold_build  # noqa: E402

from mlflow_steps.components.builder.build import plan  # noqa: E402
from mlflow_steps.components.builder.planning.options import BuildOptions  # noqa: E402
from mlflow_steps.stack import build_argv as local_build_argv  # noqa: E402
from mlflow_steps.stack import images, services, state_from_env  # noqa: E402

EXAMPLE = HERE.parent / "examples" / "sklearn-pip"
MIB = 1024 * 1024


def codeset(work: Path, six: str) -> Path:
    root = work / f"sklearn-six-{six}"
    if not root.exists():
        shutil.copytree(EXAMPLE, root)
        with (root / "requirements.txt").open("a") as handle:
            handle.write(f"six=={six}\n")
    return root


def ours(path: Path, host: str, base: str, index: str, repo: str, *extra: str) -> tuple[float, str]:
    out = path.parent / f"{repo.replace('/', '-')}.image"
    argv = local_build_argv(path, host, base=base, index_url=index, repository=repo, output=out)
    start = time.perf_counter()
    done = subprocess.run([*argv, *extra], env=cold_build.ENV, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    for line in done.stderr.splitlines():  # the per-package phases, for the record
        if line.startswith("per-package layers: uploaded"):
            print(f"    {repo}: {line.split(';', 1)[1].strip()}", flush=True)
    return took, out.read_text()


def blobs_seen(registry, since: int, method: str) -> set[str]:
    """Digests of the blobs uploaded (PUT) or downloaded (GET) since log line `since`."""
    time.sleep(0.3)  # the registry writes its access log after answering
    found = set()
    for line in registry.requests_seen()[since:]:
        verb, url = line.split(" ", 1)
        parts = urlsplit(url)
        if verb != method or "/blobs/" not in parts.path:
            continue
        if method == "PUT":
            found.update(parse_qs(parts.query).get("digest", []))
        elif "/blobs/sha256:" in parts.path:
            found.add(parts.path.rsplit("/", 1)[-1])
    return found


def blob_size(host: str, repo: str, digest: str) -> int:
    reply = requests.head(f"http://{host}/v2/{repo}/blobs/{digest}", timeout=10)
    return int(reply.headers["Content-Length"])


def layer_digests(host: str, image: str) -> list[str]:
    repo, _, tag = image.partition("/")[2].rpartition(":")
    manifest = requests.get(
        f"http://{host}/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    ).json()
    return [layer["digest"] for layer in manifest["layers"]]


def pull(image: str) -> float:
    start = time.perf_counter()
    cold_build.buildah("pull", "--tls-verify=false", image)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--storage-driver", default="vfs", choices=["vfs", "overlay"])
    args = parser.parse_args()
    work = cold_build.work_folder("layered_build", args.storage_driver)
    registry = services.start_registry(work / "registry")
    index = services.start_index(images.wheelhouse(state_from_env() / "cache"), work / "index")
    times: dict[str, list[float]] = {}
    notes: dict[str, list[str]] = {}

    def record(name: str, seconds: float) -> None:
        times.setdefault(name, []).append(seconds)
        print(f"run {run + 1}: {name}: {seconds:.1f} s", flush=True)

    try:
        host = registry.host
        # The python:3.x shape: the seed's recipe needs a system pip.
        base = images.push_base_images(host, state_from_env() / "cache")["python"]
        url = index.extra["url"]
        before, after = codeset(work, "1.16.0"), codeset(work, "1.17.0")
        options = BuildOptions(registry=host, pull_registry="", insecure=True, base_image=base,
                               pip_index_url=url)  # fmt: skip
        recipe = plan(after, options).recipe
        assert recipe is not None
        requirements = recipe.files["mlflow-steps/requirements.txt"]
        for run in range(args.runs):
            cold_build.clean_local_storage()
            record("seed, full rebuild (cold)", cold_build.seed_build(
                host, base, url, requirements, f"seed{run}/env", direct=True))  # fmt: skip
            cold_build.clean_local_storage()
            took, single = ours(after, host, base, url, f"single{run}/env", "--layering", "single")
            record("single, rebuild (cold)", took)
            cold_build.clean_local_storage()
            took, first = ours(before, host, base, url, f"layers{run}/before")
            record("per-package, cold", took)
            cold_build.clean_local_storage()
            since = len(registry.requests_seen())
            took, second = ours(after, host, base, url, f"layers{run}/after")
            record("per-package, one-package bump", took)
            sent = blobs_seen(registry, since, "PUT")
            repo = f"layers{run}/after"
            six = set(layer_digests(host, second)) - set(layer_digests(host, first))
            sizes = {digest: blob_size(host, repo, digest) for digest in sent | six}
            notes.setdefault("uploaded", []).append(
                f"{len(sent)} blobs, {sum(sizes[d] for d in sent)} bytes; new layers "
                f"{sorted(sizes[d] for d in six)} bytes"
            )
            print(f"run {run + 1}: uploaded by the bump: {notes['uploaded'][-1]}", flush=True)
            cold_build.clean_local_storage()
            pull(first)
            since = len(registry.requests_seen())
            record("pull of the bumped image over the previous", pull(second))
            fetched = blobs_seen(registry, since, "GET")
            new_layers = set(layer_digests(host, second)) - set(layer_digests(host, first))
            notes.setdefault("pulled", []).append(
                f"{len(fetched)} blobs: {len(fetched & new_layers)} of the {len(new_layers)} "
                f"new layers, {len(fetched - new_layers)} other (the config)"
            )
            env_layer = layer_digests(host, single)[-1]
            notes.setdefault("single: its environment layer, uploaded and pulled again", []).append(
                f"{blob_size(host, f'single{run}/env', env_layer)} bytes"
            )
            print(f"run {run + 1}: pulled: {notes['pulled'][-1]}", flush=True)
    finally:
        cold_build.clean_local_storage()
        index.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nstorage driver {args.storage_driver}; runs: {args.runs}, interleaved; every build "
          "from a fresh store (base pulled too); medians (min)")  # fmt: skip
    for name, values in times.items():
        print(f"{name:48} {statistics.median(values):6.1f} s  (min {min(values):.1f})  "
              f"{[round(v, 1) for v in values]}")  # fmt: skip
    bump = statistics.median(times["per-package, one-package bump"])
    for other in ("seed, full rebuild (cold)", "single, rebuild (cold)"):
        print(f"bump / {other}: {bump / statistics.median(times[other]):.2f}")
    cold = statistics.median(times["per-package, cold"])
    for other in ("seed, full rebuild (cold)", "single, rebuild (cold)"):
        print(f"per-package cold / {other}: {cold / statistics.median(times[other]):.2f}")
    for key, values in notes.items():
        print(f"{key}: {values}")


if __name__ == "__main__":
    main()

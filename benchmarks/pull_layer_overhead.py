"""What one more layer costs a node, whatever its size: images of N tiny layers (one 1.1 KB file
each, gzip), pulled into an EMPTY overlay store of their own, as in pull_and_start.py.

The images (1, 21 and 41 layers) are written as OCI layouts here and pushed with skopeo into a
local registry this benchmark starts. Then, interleaved (the order reversed every other run),
each is pulled with `buildah pull --tls-verify=false` into a fresh `--root`/`--runroot` folder
(`--storage-driver overlay`); the store is removed and the disk flushed after each pull
(untimed). Printed: wall time per pull, median and minimum, and (41 - 1) / 40 per extra layer:
containers/storage's fixed work per layer (a layer folder with its link, the `storage-untar`
helper re-executed for the layer, the layer list written, the uncompressed digest and
tar-split), which no layout of the bytes inside avoids.

    python3 benchmarks/pull_layer_overhead.py [--runs 6]   (root, buildah, skopeo; ~1 min)
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mlflow_steps.stack import services  # noqa: E402

COUNTS = (1, 21, 41)
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def tiny_layer(number: int) -> tuple[bytes, bytes]:
    """(tar, gzip of it): one file of 1,100 bytes, `opt/f<number>`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = number.to_bytes(4, "big") * 25 + b"x" * 1000
        info = tarfile.TarInfo(f"opt/f{number}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    return raw, gzip.compress(raw, 1, mtime=0)


def write_layout(folder: Path, count: int) -> None:
    """An OCI image layout of `count` tiny layers (image-spec image-layout.md)."""
    (folder / "blobs" / "sha256").mkdir(parents=True)

    def put(blob: bytes) -> str:
        digest = hashlib.sha256(blob).hexdigest()
        (folder / "blobs" / "sha256" / digest).write_bytes(blob)
        return f"sha256:{digest}"

    layers, diff_ids = [], []
    for number in range(count):
        raw, compressed = tiny_layer(number)
        layers.append({"mediaType": LAYER, "digest": put(compressed), "size": len(compressed)})
        diff_ids.append(f"sha256:{hashlib.sha256(raw).hexdigest()}")
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()  # fmt: skip
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put(config), "size": len(config)},
        "layers": layers,
    }).encode()  # fmt: skip
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": put(manifest), "size": len(manifest)}]}  # fmt: skip
    (folder / "index.json").write_text(json.dumps(index))
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def pull(image: str, parent: Path) -> float:
    """Wall seconds of `buildah pull` of `image` into an empty overlay store."""
    store = Path(tempfile.mkdtemp(prefix="store-", dir=parent))
    flags = ["--root", str(store / "root"), "--runroot", str(store / "run"),
             "--storage-driver", "overlay"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "CONTAINERS_STORAGE_CONF"}
    try:
        start = time.perf_counter()
        subprocess.run(["buildah", *flags, "pull", "--tls-verify=false", "--quiet", image],
                       env=env, check=True, capture_output=True)  # fmt: skip
        return time.perf_counter() - start
    finally:
        subprocess.run(["buildah", *flags, "rmi", "--all", "--force"], env=env,
                       capture_output=True)  # fmt: skip
        shutil.rmtree(store, ignore_errors=True)
        os.sync()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=6)
    args = parser.parse_args()
    if os.geteuid() != 0 or not (shutil.which("buildah") and shutil.which("skopeo")):
        sys.exit("pull_layer_overhead: needs root, buildah and skopeo")
    work = Path(tempfile.mkdtemp(prefix="mlflow-steps-bench-layers-", dir="/var/tmp"))
    registry = services.start_registry(work / "registry")
    times: dict[int, list[float]] = {count: [] for count in COUNTS}
    loads = []
    try:
        images = {}
        for count in COUNTS:
            write_layout(work / f"oci-{count}", count)
            images[count] = f"{registry.host}/layers/n{count}:latest"
            subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                            f"oci:{work / f'oci-{count}'}", f"docker://{images[count]}"],
                           check=True)  # fmt: skip
        for run in range(args.runs):
            for count in COUNTS if run % 2 == 0 else COUNTS[::-1]:
                times[count].append(pull(images[count], work))
            loads.append(" ".join(Path("/proc/loadavg").read_text().split()[:3]))
            print(f"run {run + 1}: " + ", ".join(f"{c} layers {v[-1]:.2f} s"
                  for c, v in times.items()) + f"; load {loads[-1]}", flush=True)  # fmt: skip
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nbuildah pull into an empty overlay store; {args.runs} runs, interleaved; "
          f"load average: {loads}")  # fmt: skip
    for count, values in times.items():
        print(f"{count:3} tiny layers: median {statistics.median(values):.2f} s, "
              f"min {min(values):.2f} s")  # fmt: skip
    first, last = COUNTS[0], COUNTS[-1]
    for name, pick in (("median", statistics.median), ("min", min)):
        extra = (pick(times[last]) - pick(times[first])) / (last - first)
        print(f"per extra layer ({name}s): {extra:.3f} s")


if __name__ == "__main__":
    main()

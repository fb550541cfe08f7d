"""What a node pays for many layers: pulling the per-package image of the wine-like sklearn stack
(examples/sklearn-pip plus six 1.17.0, on the debootstrapped Debian base) into an empty store
and starting it, against the `single` image of the same environment (and the engine-less
`--engine none` image, per-package too, its layers written by the builder itself).

The three images are built once, into a local registry this benchmark starts, by the builder's
buildah in a store of the benchmark's own (CONTAINERS_STORAGE_CONF, removed at the end; the
machine's /var/lib/containers is not touched). Then, interleaved, each run and each image in an
EMPTY overlay store of its own (a fresh `--root`/`--runroot` folder, `--storage-driver
overlay`, as containerd's and CRI-O's overlay snapshotter on a node):

1. pull: `buildah pull --tls-verify=false` from the local registry (download, decompress and
   unpack every layer: what a node's image pull does);
2. start: `buildah from` (the container's rootfs: one overlay mount over every layer, what the
   kubelet's runtime creates) and `buildah run` (BUILDAH_ISOLATION=chroot) of the image's
   python importing sklearn (the first files read through the overlay).

Each store is removed after its run (its containers and images, its mounts, its folder); the
disk is flushed between runs (untimed); the order of the images rotates from run to run. Each
phase is timed in wall time and in CPU time (user + system of buildah and its children, which
the other loads of a shared machine disturb less). The load average is printed with each run.

With `--node containerd`, the node is containerd instead (the runtime of GKE's, EKS's and
AKS's nodes; Debian's `containerd` package, 1.6): each run and image start a containerd of
their own (its root, state and socket in a fresh folder, the CRI plugin off, the overlayfs
snapshotter), then

1. pull: `ctr images pull --plain-http` (fetch every blob, then unpack each layer into an
   overlayfs snapshot: the work of the kubelet's image pull through CRI, whose `client.Pull`
   with unpack may start unpacking a layer while later ones are still being fetched; no CRI
   client is installed here);
2. run: `ctr run --rm` of the same import (a snapshot over every layer, runc).

Its CPU time is `ctr`'s plus the containerd daemon's (and its children's), read from /proc.

    python3 benchmarks/pull_and_start.py [--runs 5] [--only per-package single engine-less]
        [--grouping 4:0 2:2 ...] [--node buildah|containerd]
        (root, buildah, podman, an overlay-capable kernel, and for `--node containerd`
        containerd and runc; about 1 min to build, then about 30 s a run)
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

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mlflow_steps.stack import build_argv as local_build_argv  # noqa: E402
from mlflow_steps.stack import images, services, state_from_env  # noqa: E402

EXAMPLE = HERE.parent / "examples" / "sklearn-pip"
TEST_CACHE = Path.home() / ".cache" / "mlflow-steps-tests"  # the suite's, warm on this machine
MIB = 1024 * 1024
STORAGE_CONF = """\
[storage]
driver = "overlay"
runroot = "{work}/build-runroot"
graphroot = "{work}/build-root"
"""
START = ["/opt/mlflow-env/bin/python", "-c", "import sklearn"]
# name: the `mlflow-steps build` flags
IMAGES = {
    "per-package": ["--engine", "buildah"],
    "single": ["--engine", "buildah", "--layering", "single"],
    "engine-less": ["--engine", "none"],
}


# `mlflow-steps build` with grouping.SHARED_LAYERS and BINARY_LAYERS set first (--grouping).
GROUPED_BUILD = (
    "import sys; from mlflow_steps.components.builder.backends.layered import grouping as g; "
    "g.SHARED_LAYERS, g.BINARY_LAYERS = {pure}, {binary}; "
    "from mlflow_steps.cli import main; sys.argv[0] = 'mlflow-steps'; raise SystemExit(main())"
)


def grouping_variant(text: str) -> tuple[str, list[str]]:
    """'PURE:BINARY' (shared layers for the pure-Python and for the binary wheels pulled in)
    -> the image's name and its build flags (argparse type for --grouping)."""
    pure, _, binary = text.partition(":")
    if not (pure.isdigit() and binary.isdigit() and int(pure) >= 1):
        raise argparse.ArgumentTypeError(f"{text!r}: PURE:BINARY, e.g. 4:0 (PURE >= 1)")
    return f"per-package {pure}:{binary}", ["--engine", "buildah", f"--grouping={pure}:{binary}"]


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def codeset(work: Path) -> Path:
    root = work / "sklearn-six"
    shutil.copytree(EXAMPLE, root)
    with (root / "requirements.txt").open("a") as handle:
        handle.write("six==1.17.0\n")
    return root


def build(path: Path, host: str, base: str, index: str, repo: str, flags: list[str],
          env: dict[str, str]) -> str:  # fmt: skip
    """The image reference `mlflow-steps build` pushed."""
    out = path.parent / f"{repo.replace('/', '-')}.image"
    argv = local_build_argv(path, host, base=base, index_url=index, repository=repo, output=out)
    at = argv.index("--engine")
    del argv[at : at + 2]
    for flag in [f for f in flags if f.startswith("--grouping=")]:
        flags = [f for f in flags if f != flag]
        pure, binary = flag.split("=")[1].split(":")
        argv[1:3] = ["-c", GROUPED_BUILD.format(pure=int(pure), binary=int(binary))]
    done = subprocess.run([*argv, *flags], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"building {repo} failed:\n{done.stderr[-3000:]}")
    return out.read_text().strip()


def layers(image: str) -> list[int]:
    """The compressed sizes of `image`'s layers, in bytes, read from its registry."""
    host, _, rest = image.partition("/")
    repo, _, tag = rest.rpartition(":")
    manifest = requests.get(
        f"http://{host}/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    ).json()
    return [layer["size"] for layer in manifest["layers"]]


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[str, float, float]:
    """`argv`'s stdout, its wall time and its CPU time (user + system, its children's
    included: the CPU time is less disturbed by the other loads of a shared machine);
    RuntimeError with the end of its stderr when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr[-2000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return done.stdout, wall, cpu


def bytes_on_disk(path: Path) -> int:
    """Bytes under `path` (du; hard links counted once)."""
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return int(out.split()[0])


def unmount_and_remove(folder: Path) -> None:
    """Unmount whatever is mounted under `folder` (deepest first, lazily), then remove it."""
    mounted = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
               if line.split()[1].startswith(str(folder))]  # fmt: skip
    for point in sorted(mounted, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


class Store:
    """An empty overlay store of its own: `buildah` with `--root`/`--runroot` in a temp folder."""

    def __init__(self, parent: Path) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="store-", dir=parent))
        self.flags = ["--root", str(self.folder / "root"), "--runroot", str(self.folder / "run"),
                      "--storage-driver", "overlay"]  # fmt: skip
        self.env = {k: v for k, v in os.environ.items() if k != "CONTAINERS_STORAGE_CONF"}
        self.env["BUILDAH_ISOLATION"] = "chroot"

    def buildah(self, *argv: str) -> tuple[str, float, float]:
        """buildah's stdout, its wall time and its CPU time (`timed`)."""
        return timed(["buildah", *self.flags, *argv], self.env)

    def size(self) -> int:
        """Bytes the store holds on disk."""
        return bytes_on_disk(self.folder / "root")

    def remove(self) -> None:
        subprocess.run(["buildah", *self.flags, "rm", "--all"], env=self.env, capture_output=True)
        subprocess.run(["buildah", *self.flags, "rmi", "--all", "--force"], env=self.env,
                       capture_output=True)  # fmt: skip
        unmount_and_remove(self.folder)


CONTAINERD_CONF = """\
version = 2
root = "{folder}/root"
state = "{folder}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{folder}/containerd.sock"
[ttrpc]
  address = "{folder}/containerd.sock.ttrpc"
"""
TICKS = os.sysconf("SC_CLK_TCK")


class ContainerdNode:
    """An empty containerd of its own: its root, state and socket in a temp folder (the CRI
    plugin off; the default overlayfs snapshotter), talked to with `ctr`."""

    def __init__(self, parent: Path) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="containerd-", dir=parent))
        conf = self.folder / "config.toml"
        conf.write_text(CONTAINERD_CONF.format(folder=self.folder))
        self.socket = self.folder / "containerd.sock"
        with (self.folder / "containerd.log").open("wb") as log:
            self.daemon = subprocess.Popen(
                ["containerd", "--config", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not start: see {self.folder}/containerd.log")
            time.sleep(0.05)

    def daemon_cpu(self) -> float:
        """CPU seconds of the containerd daemon and its waited-for children (/proc/PID/stat:
        utime, stime, cutime, cstime)."""
        fields = Path(f"/proc/{self.daemon.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(value) for value in fields[11:15]) / TICKS

    def ctr(self, *argv: str) -> tuple[str, float, float]:
        """ctr's stdout, its wall time and the CPU time of ctr and the daemon (`timed`)."""
        daemon = self.daemon_cpu()
        out, wall, cpu = timed(["ctr", "--address", str(self.socket), *argv])
        return out, wall, cpu + self.daemon_cpu() - daemon

    def size(self) -> int:
        """Bytes of the unpacked snapshots (the content store's compressed blobs apart)."""
        return bytes_on_disk(self.folder / "root" / "io.containerd.snapshotter.v1.overlayfs")

    def remove(self) -> None:
        self.daemon.terminate()
        try:
            self.daemon.wait(20)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
        unmount_and_remove(self.folder)


def pull_and_run(image: str, parent: Path) -> tuple[dict[str, tuple[float, float]], int]:
    """{phase: (wall seconds, CPU seconds)} for pull and run (start: the run) on a fresh
    containerd, and its snapshots' bytes after the pull."""
    node = ContainerdNode(parent)
    try:
        _, *pulled = node.ctr("images", "pull", "--plain-http", image)
        size = node.size()
        os.sync()  # untimed, as with buildah
        _, *ran = node.ctr("run", "--rm", image, "start", *START)
        phases = {"pull": tuple(pulled), "run": tuple(ran), "start": tuple(ran)}
        phases["total"] = (pulled[0] + ran[0], pulled[1] + ran[1])
        return phases, size  # type: ignore[return-value]
    finally:
        node.remove()
        os.sync()


def pull_and_start(image: str, parent: Path) -> tuple[dict[str, tuple[float, float]], int]:
    """{phase: (wall seconds, CPU seconds)} for pull, from and run, and the store's bytes after
    the pull, in a fresh store."""
    store = Store(parent)
    try:
        _, *pulled = store.buildah("pull", "--tls-verify=false", "--quiet", image)
        size = store.size()
        os.sync()  # untimed: the pull's write-back is not charged to the start
        out, *created = store.buildah("from", "--pull-never", "--quiet", image)
        _, *ran = store.buildah("run", out.split()[-1], "--", *START)
        phases = {"pull": tuple(pulled), "from": tuple(created), "run": tuple(ran)}
        phases["start"] = (created[0] + ran[0], created[1] + ran[1])
        phases["total"] = (phases["start"][0] + pulled[0], phases["start"][1] + pulled[1])
        return phases, size  # type: ignore[return-value]
    finally:
        store.remove()
        os.sync()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", nargs="*", choices=list(IMAGES), default=list(IMAGES))
    parser.add_argument("--grouping", nargs="*", type=grouping_variant, default=[],
                        metavar="PURE:BINARY", help="per-package images with these "
                        "grouping.SHARED_LAYERS:BINARY_LAYERS too (BINARY 0: a layer per binary "
                        "wheel)")  # fmt: skip
    parser.add_argument(
        "--node",
        choices=("buildah", "containerd"),
        default="buildah",
        help="what pulls and starts the images (default: buildah)",
    )
    args = parser.parse_args()
    IMAGES.update(dict(args.grouping))
    args.only = [*args.only, *(name for name, _ in args.grouping if name not in args.only)]
    if os.geteuid() != 0 or not shutil.which("buildah"):
        sys.exit("pull_and_start: needs root and buildah (bash scripts/setup-machine)")
    if args.node == "containerd" and not (shutil.which("containerd") and shutil.which("runc")):
        sys.exit("pull_and_start: --node containerd needs containerd and runc "
                 "(apt-get install containerd)")  # fmt: skip
    version = node_version(args.node)
    measure = pull_and_run if args.node == "containerd" else pull_and_start
    work = Path(tempfile.mkdtemp(prefix="mlflow-steps-bench-pull-", dir="/var/tmp"))
    conf = work / "storage.conf"
    conf.write_text(STORAGE_CONF.format(work=work))
    # Every podman and buildah call of the build (the base's import, the builder's) uses the
    # benchmark's own store, never the machine's.
    os.environ["CONTAINERS_STORAGE_CONF"] = str(conf)
    env = {**os.environ, "BUILDAH_ISOLATION": "chroot", "XDG_CACHE_HOME": str(work / "xdg")}
    cache = TEST_CACHE if (TEST_CACHE / "debian-bookworm-python3.tar").exists() else (
        state_from_env() / "cache")  # fmt: skip
    registry = services.start_registry(work / "registry")
    index = services.start_index(images.wheelhouse(cache), work / "index")
    built: dict[str, str] = {}
    layer_sizes: dict[str, list[int]] = {}
    times: dict[str, dict[str, list[float]]] = {name: {} for name in args.only}
    sizes: dict[str, int] = {}
    loads: list[str] = []
    try:
        host, url = registry.host, index.extra["url"]
        base = images.push_base_images(host, cache)["debian"]
        path = codeset(work)
        for number, name in enumerate(args.only):
            built[name] = build(path, host, base, url, f"i{number}/env", IMAGES[name], env)
            layer_sizes[name] = layers(built[name])
            print(f"built {name}: {built[name]}", flush=True)
        for run in range(args.runs):
            shift = run % len(args.only)  # rotated: no image always comes first
            for name in args.only[shift:] + args.only[:shift]:
                phases, sizes[name] = measure(built[name], work)
                for key, (wall, cpu) in phases.items():
                    times[name].setdefault(key, []).append(wall)
                    times[name].setdefault(key + " (CPU)", []).append(cpu)
                loads.append(load())
                print(f"run {run + 1}: {name}: " + ", ".join(
                    f"{key} {wall:.2f} s (CPU {cpu:.2f} s)" for key, (wall, cpu) in phases.items()
                ) + f"; load {loads[-1]}", flush=True)  # fmt: skip
    finally:
        for name in [n for n in args.only if n not in built]:
            times.pop(name, None)
        subprocess.run(["buildah", "rm", "--all"], capture_output=True, env=env)
        subprocess.run(["buildah", "rmi", "--all", "--force"], capture_output=True, env=env)
        subprocess.run(["podman", "rmi", "--all", "--force"], capture_output=True, env=env)
        index.stop()
        registry.stop()
        unmount_and_remove(work)
    print(f"\noverlay storage (a fresh store per run; {version}); "
          f"runs: {args.runs}, interleaved; load average during the runs: {loads}")  # fmt: skip
    for name in built:
        sized = layer_sizes[name]
        print(f"{name}: {len(sized)} layers, {sum(sized) / MIB:.1f} MiB compressed "
              f"(largest {max(sized) / MIB:.1f} MiB, {sum(s < MIB for s in sized)} under 1 MiB); "
              f"{sizes.get(name, 0) / MIB:.0f} MiB in the store")  # fmt: skip
    print(f"{'case':34} {'median':>8} {'min':>8}   runs (s)")
    for name, cases in times.items():
        for key, values in cases.items():
            print(f"{name + ', ' + key:34} {statistics.median(values):8.2f} {min(values):8.2f}   "
                  f"{[round(v, 2) for v in values]}")  # fmt: skip
    for name in times:
        if name == "single" or "single" not in times:
            continue
        for key in ("pull", "start", "total", "pull (CPU)", "start (CPU)", "total (CPU)"):
            ratio = statistics.median(times[name][key]) / statistics.median(times["single"][key])
            low = min(times[name][key]) / min(times["single"][key])
            print(f"{name} / single, {key}: {ratio:.2f} (medians), {low:.2f} (minima)")


def node_version(node: str) -> str:
    """`buildah 1.28.2` or `containerd 1.6.20~ds1`."""
    done = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    return f"{node} {done.stdout.split()[2]}"


if __name__ == "__main__":
    main()

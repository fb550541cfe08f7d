"""The recipe's bytecode step against `compileall`, in the container a build runs in.

Each trial starts a container of the python:3.x-shaped base (buildah, chroot isolation), installs
the sklearn example's environment with uv from the local index (untimed), then times one of:
`python -m compileall -qq -j 0 --invalidation-mode unchecked-hash -x <tests>` (what the recipe
ran before) and `compile-bytecode.py` (what it runs now). Trials interleaved; medians and minima.

    python3 benchmarks/compile_bytecode.py [--runs 3] [--storage-driver overlay|vfs]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cold_build  # noqa: E402

from mlflow_steps.components.builder.backends.recipe import find_uv  # noqa: E402
from mlflow_steps.components.builder.planning.plan import recipe_file  # noqa: E402
from mlflow_steps.stack import images, services, state_from_env  # noqa: E402

TRIAL = """\
set -e
export UV_NO_CACHE=1 UV_INDEX_URL="$INDEX" SOURCE_DATE_EPOCH=0
/ctx/uv venv -q --python /usr/bin/python3 /opt/env
/ctx/uv pip install -q --python /opt/env/bin/python -r /ctx/requirements.txt
site=$(/opt/env/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
start=$(/opt/env/bin/python -c 'import time; print(time.time())')
case "$1" in
  compileall) /opt/env/bin/python -m compileall -qq -j 0 --invalidation-mode unchecked-hash \\
      -x '/site-packages/.*/tests?/' "$site" || true ;;
  compile-bytecode.py) /opt/env/bin/python /ctx/compile-bytecode.py "$site" >/dev/null ;;
esac
/opt/env/bin/python -c "import time; print('seconds', time.time() - $start)"
echo pyc "$(find "$site" -name '*.pyc' | wc -l)"
"""
VARIANTS = ("compileall", "compile-bytecode.py")


def trial(base: str, index_url: str, context: Path, variant: str) -> tuple[float, int]:
    argv = ["buildah", "run", "--isolation", "chroot", "--env", f"INDEX={index_url}"]
    with cold_build.container(base) as ctr:
        argv += ["-v", f"{context}:/ctx", ctr, "--", "sh", "/ctx/trial.sh", variant]
        done = subprocess.run(argv, capture_output=True, text=True, env=cold_build.ENV, check=True)
    fields = dict(line.split() for line in done.stdout.splitlines() if line.count(" ") == 1)
    return float(fields["seconds"]), int(fields["pyc"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--storage-driver", default="overlay", choices=["vfs", "overlay"])
    args = parser.parse_args()
    work = cold_build.work_folder("compile_bytecode", args.storage_driver)
    context = work / "ctx"
    context.mkdir()
    (context / "trial.sh").write_text(TRIAL)
    (context / "compile-bytecode.py").write_bytes(recipe_file("compile-bytecode.py"))
    (context / "requirements.txt").write_text("pandas>=2\nscikit-learn>=1.3\nmlflow-skinny\n")
    uv = find_uv()
    assert uv, "uv is a dev dependency"
    shutil.copy2(uv, context / "uv")
    registry = services.start_registry(work / "registry")
    index = services.start_index(images.wheelhouse(state_from_env() / "cache"), work / "index")
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    files: dict[str, int] = {}
    try:
        base = images.push_base_images(registry.host, state_from_env() / "cache")["python"]
        for run in range(args.runs):
            for name in VARIANTS:
                cold_build.clean_local_storage()
                seconds, files[name] = trial(base, index.extra["url"], context, name)
                times[name].append(seconds)
                print(f"run {run + 1}: {name}: {seconds:.2f} s, {files[name]} .pyc", flush=True)
    finally:
        cold_build.clean_local_storage()
        index.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"storage driver {args.storage_driver}; {args.runs} runs each, interleaved")
    for name in VARIANTS:
        print(
            f"{name:22} median {statistics.median(times[name]):5.2f} s (min "
            f"{min(times[name]):.2f}) for {files[name]} .pyc; runs "
            f"{[round(t, 2) for t in times[name]]}"
        )


if __name__ == "__main__":
    main()

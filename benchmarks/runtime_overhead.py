"""Runtime step overhead: time from the runtime module's start to the entry point's command
starting, and total overhead over running the same command directly, in the built image
(buildah), in the `local` engine's venv, and for the whole `mlflow-steps run --engine local`
process (its environment already built). Tracking: a real MLflow server on 127.0.0.1.

    python3 benchmarks/runtime_overhead.py [--runs 5]     (root, buildah; a few minutes)
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from mlflow_steps.components.builder.build import plan  # noqa: E402
from mlflow_steps.components.builder.planning.options import BuildOptions  # noqa: E402
from mlflow_steps.components.launcher import local_env  # noqa: E402
from mlflow_steps.stack import build_argv as local_build_argv  # noqa: E402
from mlflow_steps.stack import (  # noqa: E402
    images,
    services,
    state_from_env,
)

MLPROJECT = """\
name: overhead
entry_points:
  main:
    command: "python stamp.py"
"""
# The entry point stamps when its command starts, then logs a tiny "model" so the step resolves.
STAMP = """\
import os, time
start = time.time()
import mlflow
mlflow.log_text("flavors: {}\\n", "model/MLmodel")
open(os.environ.get("STAMP_FILE", "/io/stamp"), "w").write(repr(start))
"""
ENV = {**os.environ, "BUILDAH_ISOLATION": "chroot"}


def timed(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(
        argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def in_image(image: str, codeset: Path, io: Path, tracking: str, runs: int) -> dict:
    ctr = subprocess.run(
        ["buildah", "from", "--quiet", "--tls-verify=false", image],
        capture_output=True,
        text=True,
        env=ENV,
        check=True,
    ).stdout.split()[-1]
    base = [
        "buildah",
        "run",
        "--isolation",
        "chroot",
        "-v",
        f"{codeset}:/project",
        "-v",
        f"{io}:/io",
        "--env",
        f"MLFLOW_TRACKING_URI={tracking}",
        ctr,
        "--",
        "sh",
        "-c",
    ]
    step = "date +%s.%N > /io/begin; python -m mlflow_steps_runtime /project --output /io/url"
    direct = "cd /project && python stamp.py"
    try:
        return measure(
            lambda: timed([*base, step], ENV), lambda: timed([*base, direct], ENV), io, runs
        )
    finally:
        subprocess.run(["buildah", "rm", ctr], capture_output=True, env=ENV)


def in_local(venv: Path, codeset: Path, io: Path, tracking: str, runs: int) -> dict:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking,
        "STAMP_FILE": str(io / "stamp"),
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
    }
    python = str(venv / "bin" / "python")
    script = (
        f"date +%s.%N > {io}/begin; exec {python} -m mlflow_steps_runtime {codeset} "
        f"--output {io}/url"
    )
    return measure(
        lambda: timed(["sh", "-c", script], env),
        lambda: timed([python, "stamp.py"], env, cwd=codeset),
        io,
        runs,
    )


def in_local_cli(
    venv: Path, codeset: Path, io: Path, tracking: str, runs: int, flags: list[str]
) -> dict:
    """The whole `mlflow-steps run --engine local` process (`venv`, its environment, cached)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "STAMP_FILE": str(io / "stamp")}
    cli = shlex.join([sys.executable, "-m", "mlflow_steps", "run", str(codeset), *flags])
    script = f"date +%s.%N > {io}/begin; exec {cli} --engine local --output {io}/url"
    return measure(
        lambda: timed(["sh", "-c", script], env),
        lambda: timed([str(venv / "bin" / "python"), "stamp.py"], env, cwd=codeset),
        io,
        runs,
    )


def measure(step, direct, io: Path, runs: int) -> dict:
    to_command, step_times, direct_times = [], [], []
    for _ in range(runs):
        step_times.append(step())
        begin = float((io / "begin").read_text())
        to_command.append(float((io / "stamp").read_text()) - begin)
        direct_times.append(direct())
    return {
        "to_command": statistics.median(to_command),
        "step": statistics.median(step_times),
        "direct": statistics.median(direct_times),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlflow-steps-overhead-"))
    codeset, io = work / "codeset", work / "io"
    codeset.mkdir()
    io.mkdir()
    (codeset / "MLproject").write_text(MLPROJECT)
    (codeset / "stamp.py").write_text(STAMP)
    (codeset / "requirements.txt").write_text("six==1.16.0\n")
    registry = services.start_registry(work / "registry")
    index = services.start_index(images.wheelhouse(state_from_env() / "cache"), work / "index")
    tracking = services.start_tracking_server(work / "tracking")
    try:
        base = images.push_base_images(registry.host, state_from_env() / "cache")["debian"]
        options = BuildOptions(
            registry=registry.host,
            pull_registry="",
            insecure=True,
            base_image=base,
            pip_index_url=index.extra["url"],
        )
        argv = local_build_argv(
            codeset, registry.host, base=base, index_url=index.extra["url"], output=io / "image"
        )
        subprocess.run(argv, check=True, env=ENV, stdout=subprocess.DEVNULL)
        url = tracking.extra["url"]
        image = in_image((io / "image").read_text(), codeset, io, url, args.runs)
        os.environ["MLFLOW_STEPS_ENV_CACHE"] = str(work / "envs")
        target = local_env.ensure_local_env(plan(codeset, options), options, lambda _: None)
        local = in_local(target / "venv", codeset, io, url, args.runs)
        flags = ["--base-image", base, "--pip-index-url", index.extra["url"]]
        flags += ["--registry", registry.host, "--pull-registry", "", "--insecure"]
        cli = in_local_cli(target / "venv", codeset, io, url, args.runs, flags)
    finally:
        tracking.stop()
        index.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"runs: {args.runs} each (medians); entry point: python stamp.py (imports mlflow, "
        "logs one artifact)"
    )
    rows = (("image (buildah run)", image), ("local venv", local), ("mlflow-steps run", cli))
    for name, r in rows:
        print(
            f"{name:20}: module start -> command start {r['to_command']:.2f} s; step "
            f"{r['step']:.2f} s vs direct {r['direct']:.2f} s: overhead "
            f"{r['step'] - r['direct']:.2f} s"
        )


if __name__ == "__main__":
    main()

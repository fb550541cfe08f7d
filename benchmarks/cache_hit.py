"""Cache hit with 1,000 tags in the repository: wall time of `mlflow-steps build` and the number
of registry requests it made, read from the registry's own access log. The base image is a tag
in the same registry, so each run resolves it to its digest (one HEAD) before it asks for the
environment's tag (one HEAD); `--base-by-digest` gives the base by digest instead (no request).

    python3 benchmarks/cache_hit.py [--tags 1000] [--runs 10] [--resolve] [--base-by-digest]

With `--resolve`, the sklearn example is also looked up with `resolve=true` against a local
pypiserver (the test wheelhouse), interleaved with the same lookup without it: with uv's cache
warm (as on a machine that resolved before) and with `UV_NO_CACHE=1` (a fresh builder pod).
All variants use a base named python:3.11 (resolution needs the base's Python) and the index.

The CLI runs from this checkout with its own modules' bytecode, as after a wheel install (pip
compiles what it installs): PYTHONDONTWRITEBYTECODE is removed from the CLI's environment and
each variant runs once, untimed, first. Without that, a machine that sets it (this project's
test machine does) compiles every module of the CLI at every start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from mlflow_steps.components.builder.build import base_resolver, plan  # noqa: E402
from mlflow_steps.components.builder.planning.options import BuildOptions  # noqa: E402
from mlflow_steps.stack import build_argv as local_build_argv  # noqa: E402
from mlflow_steps.stack import state_from_env  # noqa: E402
from mlflow_steps.stack.images import wheelhouse  # noqa: E402
from mlflow_steps.stack.oci import push_tiny_image  # noqa: E402
from mlflow_steps.stack.services import start_index, start_registry  # noqa: E402

CODESET = ROOT / "examples" / "sklearn-pip"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--resolve", action="store_true")
    parser.add_argument("--base-by-digest", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        registry = start_registry(Path(tmp) / "registry")
        index = (
            start_index(wheelhouse(state_from_env() / "cache"), Path(tmp) / "index")
            if args.resolve
            else None
        )
        try:
            digest = push_tiny_image(registry.host, "base/python", ["3.11"])
            base = f"{registry.host}/base/python" + (
                f":3.11@{digest}" if args.base_by_digest else ":3.11"
            )
            url = index.extra["url"] if index else ""
            variants = lookups(registry.host, url, args.resolve, base)
            tags = [
                plan(CODESET, options, base_resolver(options)).tag
                for options, _, _ in variants.values()
            ]
            others = [uuid.uuid4().hex[:24] for _ in range(args.tags - len(tags))]
            push_tiny_image(registry.host, "mlflow/trainer", [*others, *tags])
            results = {name: ([], set(), []) for name in variants}
            for _, command, env in variants.values():  # writes the CLI's bytecode
                subprocess.run(command, capture_output=True, env=env, check=True)
            for _ in range(args.runs):  # interleaved
                for name, (_, command, env) in variants.items():
                    times, methods, requests = results[name]
                    before = len(registry.requests_seen())
                    start = time.perf_counter()
                    done = subprocess.run(command, capture_output=True, text=True, env=env)
                    times.append(time.perf_counter() - start)
                    assert "nothing to build" in done.stderr, done.stderr
                    time.sleep(0.2)  # let the registry flush its access log
                    new = registry.requests_seen()[before:]
                    requests.append(len(new))
                    methods.update(new)
        finally:
            registry.stop()
            if index:
                index.stop()
    print(f"base image:                {base}")
    print(f"tags in repository:        {args.tags}")
    print(f"runs:                      {args.runs} (variants interleaved)")
    for name, (times, methods, requests) in results.items():
        print(f"[{name}]")
        print(
            f"  wall time, median:       {statistics.median(times):.3f} s "
            f"(min {min(times):.3f}, max {max(times):.3f}; whole CLI process)"
        )
        print(f"  registry requests/run:   {sorted(set(requests))} ({', '.join(sorted(methods))})")


def lookups(registry: str, index_url: str, resolve: bool, base: str) -> dict:
    """name -> (options, command, environment) of each cache-hit variant."""
    plain = BuildOptions(registry=registry, pull_registry="", insecure=True, base_image=base)
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    if not resolve:
        return {"plain": (plain, local_build_argv(CODESET, registry, base=base), env)}
    indexed = replace(plain, base_image=base, pip_index_url=index_url)
    argv = local_build_argv(CODESET, registry, base=base, index_url=index_url)
    return {
        "without resolve": (indexed, argv, env),
        "resolve, uv cache warm": (replace(indexed, resolve=True), [*argv, "--resolve"], env),
        "resolve, UV_NO_CACHE=1": (
            replace(indexed, resolve=True),
            [*argv, "--resolve"],
            {**env, "UV_NO_CACHE": "1"},
        ),
    }


if __name__ == "__main__":
    main()

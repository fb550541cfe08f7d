"""Cache hit with 1,000 tags in the repository: wall time of `mlflow-steps build` and the number
of registry requests it made, read from the registry's own access log. The base image is a tag
in the same registry, so each run resolves it to its digest (one HEAD) before it asks for the
environment's tag (one HEAD); `--base-by-digest` gives the base by digest instead (no request).

    python3 benchmarks/cache_hit.py [--tags 1000] [--runs 10] [--base-by-digest]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlflow_steps.components.builder.build import base_resolver, plan  # noqa: E402
from mlflow_steps.components.builder.options import BuildOptions  # noqa: E402
from tests.support.builds import local_build_argv  # noqa: E402
from tests.support.oci import push_tiny_image  # noqa: E402
from tests.support.services import start_registry  # noqa: E402

CODESET = ROOT / "examples" / "sklearn-pip"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--base-by-digest", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        registry = start_registry(Path(tmp) / "registry")
        try:
            digest = push_tiny_image(registry.host, "base/python", ["3.11"])
            base = f"{registry.host}/base/python" + (
                f"@{digest}" if args.base_by_digest else ":3.11"
            )
            options = BuildOptions(
                registry=registry.host, pull_registry="", insecure=True, base_image=base
            )
            tag = plan(CODESET, options, base_resolver(options)).tag
            others = [uuid.uuid4().hex[:24] for _ in range(args.tags - 1)]
            push_tiny_image(registry.host, options.repository, [*others, tag])
            command = local_build_argv(CODESET, registry.host, base=base)
            times: list[float] = []
            requests: list[int] = []
            methods: set[str] = set()
            for _ in range(args.runs):
                before = len(registry.requests_seen())
                start = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                times.append(time.perf_counter() - start)
                assert "nothing to build" in done.stderr, done.stderr
                time.sleep(0.2)  # let the registry flush its access log
                new = registry.requests_seen()[before:]
                requests.append(len(new))
                methods.update(new)
        finally:
            registry.stop()
    print(f"base image:                {base}")
    print(f"tags in repository:        {args.tags}")
    print(f"runs:                      {args.runs}")
    print(
        f"wall time, median:         {statistics.median(times):.3f} s "
        f"(min {min(times):.3f}, max {max(times):.3f}; whole CLI process)"
    )
    print(f"registry requests per run: {sorted(set(requests))} ({', '.join(sorted(methods))})")


if __name__ == "__main__":
    main()

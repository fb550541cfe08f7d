"""The main job, on one machine with no cluster: build an example codeset's environment image.

Starts a real registry and a package index on 127.0.0.1 (state kept in ~/.cache/mlflow-steps-demo,
so a second run finds the image and builds nothing), pushes a debootstrapped Debian base image
once, then runs `mlflow-steps build` with buildah.

    python3 examples/demo.py [CODESET]      # default: examples/sklearn-pip
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlflow_steps.components.builder.registry import RegistryClient  # noqa: E402
from tests.support import images, services  # noqa: E402

STATE = Path.home() / ".cache" / "mlflow-steps-demo"
# Fixed ports: the base image and index URLs are part of the tag, so they must not move.
REGISTRY_PORT = int(os.environ.get("MLFLOW_STEPS_DEMO_REGISTRY_PORT", "35000"))
INDEX_PORT = int(os.environ.get("MLFLOW_STEPS_DEMO_INDEX_PORT", "35001"))


def main() -> int:
    codeset = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "examples" / "sklearn-pip"
    registry = services.start_registry(STATE / "registry", port=REGISTRY_PORT)
    index = services.start_index(images.wheelhouse(), STATE / "index", port=INDEX_PORT)
    try:
        base = f"{registry.host}/base/debian:bookworm"
        if (
            RegistryClient(registry.host, insecure=True).manifest_digest("base/debian", "bookworm")
            is None
        ):
            print(f"pushing a debootstrapped base image to {base} (once)", file=sys.stderr)
            base = images.push_base_images(registry.host)["debian"]
        command = [
            sys.executable,
            "-m",
            "mlflow_steps",
            "build",
            str(codeset),
            "--registry",
            registry.host,
            "--pull-registry",
            "",
            "--insecure",
            "--engine",
            "buildah",
            "--base-image",
            base,
            "--pip-index-url",
            index.extra["url"],
        ]
        print("+ " + " ".join(command), file=sys.stderr)
        env = {**os.environ, "BUILDAH_ISOLATION": "chroot"}
        return subprocess.run(command, env=env).returncode
    finally:
        index.stop()
        registry.stop()


if __name__ == "__main__":
    raise SystemExit(main())

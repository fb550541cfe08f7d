"""The main job, on one machine with no cluster: build an example codeset's environment image,
then train it in that image, and print the model URL.

Starts a real registry, a package index and an MLflow tracking server on 127.0.0.1 (state kept
in ~/.cache/mlflow-steps-demo, so a second run finds the image and builds nothing), pushes a
debootstrapped Debian base image once, runs `mlflow-steps build` with buildah, then
`mlflow-steps run --image` (buildah) against the tracking server.

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
from tests.support.builds import local_build_argv  # noqa: E402

STATE = Path.home() / ".cache" / "mlflow-steps-demo"
# Fixed ports: the base image and index URLs are part of the tag, so they must not move.
REGISTRY_PORT = int(os.environ.get("MLFLOW_STEPS_DEMO_REGISTRY_PORT", "35000"))
INDEX_PORT = int(os.environ.get("MLFLOW_STEPS_DEMO_INDEX_PORT", "35001"))
TRACKING_PORT = int(os.environ.get("MLFLOW_STEPS_DEMO_TRACKING_PORT", "35002"))


def main() -> int:
    codeset = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "examples" / "sklearn-pip"
    registry = services.start_registry(STATE / "registry", port=REGISTRY_PORT)
    index = services.start_index(images.wheelhouse(), STATE / "index", port=INDEX_PORT)
    tracking = services.start_tracking_server(STATE / "tracking", port=TRACKING_PORT)
    try:
        base = ensure_base_image(registry.host)
        env = {
            **os.environ,
            "BUILDAH_ISOLATION": "chroot",
            "MLFLOW_TRACKING_URI": tracking.extra["url"],
        }
        build = local_build_argv(codeset, registry.host, base=base, index_url=index.extra["url"])
        image = step(env, build)
        run = ["run", str(codeset), "--image", image, "--engine", "buildah", "--insecure"]
        model = step(env, [sys.executable, "-m", "mlflow_steps", *run])
        print(f"image: {image}")
        print(f"model: {model}")
        print(f"tracking server state (server stopped now): {STATE / 'tracking'}")
        return 0
    except subprocess.CalledProcessError as exc:
        return exc.returncode
    finally:
        tracking.stop()
        index.stop()
        registry.stop()


def ensure_base_image(host: str) -> str:
    if RegistryClient(host, insecure=True).manifest_digest("base/debian", "bookworm") is None:
        print(f"pushing a debootstrapped base image to {host} (once)", file=sys.stderr)
        images.push_base_images(host)
    return f"{host}/base/debian:bookworm"


def step(env: dict[str, str], argv: list[str]) -> str:
    """Run one `mlflow-steps` command, streaming its log; returns the last line it printed."""
    print("+ mlflow-steps " + " ".join(argv[3:]), file=sys.stderr)
    done = subprocess.run(argv, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


if __name__ == "__main__":
    raise SystemExit(main())

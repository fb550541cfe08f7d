"""The main job, on one machine with no cluster: build an example codeset's environment image,
then train it in that image, and print the model URL.

Starts the local stack (mlflow_steps.stack: a registry, a package index and an MLflow tracking
server on 127.0.0.1; state kept in ~/.cache/mlflow-steps/stack, or MLFLOW_STEPS_STACK_STATE,
so a second run finds the image and builds nothing), pushes a debootstrapped Debian base image
once, runs `mlflow-steps build` with buildah, then `mlflow-steps run --image` (buildah)
against the tracking server. `mlflow-steps stack up` starts the same stack on its own.

    python3 examples/demo.py [CODESET]      # default: examples/sklearn-pip
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlflow_steps import stack

EXAMPLES = Path(__file__).resolve().parent


def main() -> int:
    codeset = Path(sys.argv[1]) if len(sys.argv) > 1 else EXAMPLES / "sklearn-pip"
    state = stack.state_from_env()
    log = print_to_stderr
    with stack.running(state, log=log) as up:
        env = {**os.environ, **up.settings(), "BUILDAH_ISOLATION": "chroot"}
        try:
            image = step(env, ["build", str(codeset), "--engine", "buildah"])
            model = step(env, ["run", str(codeset), "--image", image, "--engine", "buildah"])
        except subprocess.CalledProcessError as exc:
            return exc.returncode
    print(f"image: {image}")
    print(f"model: {model}")
    print(f"tracking server state (server stopped now): {state / 'tracking'}")
    return 0


def print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def step(env: dict[str, str], argv: list[str]) -> str:
    """Run one `mlflow-steps` command with the stack's settings in its environment (builder
    inputs as FUSEML_<INPUT>), its log on stderr; returns its output, the one line of stdout."""
    print_to_stderr("+ mlflow-steps " + " ".join(argv))
    done = subprocess.run(
        [sys.executable, "-m", "mlflow_steps", *argv],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    (output,) = done.stdout.splitlines()
    return output


if __name__ == "__main__":
    raise SystemExit(main())

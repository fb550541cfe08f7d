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
    try:
        with stack.running(state, log=log) as up:
            env = {**os.environ, **up.settings(), "BUILDAH_ISOLATION": "chroot"}
            image = step(env, ["build", str(codeset), "--engine", "buildah"])
            model = step(env, ["run", str(codeset), "--image", image, "--engine", "buildah"])
    except StepFailed as failed:
        print_to_stderr(f"demo: error: {failed}")
        return 1
    except (OSError, RuntimeError) as failed:  # a server or the base image did not come up
        print_to_stderr(f"demo: error: the local stack could not start: {failed}")
        return 1
    print(f"image: {image}")
    print(f"model: {model}")
    print(f"tracking server state (server stopped now): {state / 'tracking'}")
    return 0


class StepFailed(Exception):
    """An `mlflow-steps` command failed, or printed something other than its one output."""


def print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def step(env: dict[str, str], argv: list[str]) -> str:
    """Run one `mlflow-steps` command with the stack's settings in its environment (builder
    inputs as FUSEML_<INPUT>), its log on stderr; returns its output: its stdout, which must be
    exactly one non-empty line (`build`: the image reference; `run`: the model URL). Raises
    StepFailed when the command fails or its stdout is anything else."""
    command = "mlflow-steps " + " ".join(argv)
    print_to_stderr("+ " + command)
    done = subprocess.run(
        [sys.executable, "-m", "mlflow_steps", *argv], env=env, stdout=subprocess.PIPE, text=True
    )
    if done.returncode != 0:
        raise StepFailed(f"`{command}` failed (exit {done.returncode}); its error is above")
    lines = done.stdout.splitlines()
    if len(lines) != 1 or not lines[0].strip() or lines[0] != lines[0].strip():
        raise StepFailed(
            f"`{command}` printed {len(lines)} line(s) on stdout, where its output is exactly "
            f"one: {done.stdout[-2000:]!r}. Its stdout must carry its output alone (a log line "
            "there is a bug of mlflow-steps: please report it)"
        )
    return lines[0]


if __name__ == "__main__":
    raise SystemExit(main())

"""Run the runtime module inside an image with the codeset mounted at /project.

buildah: `from`, `run --isolation chroot -v`, `rm`. docker/podman: `run --rm -v`. The I/O
folder (env file in, output file out) is mounted at /mlflow-steps-io.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..problems import StepError
from ..processes import Finished, run_logged

IO_DIR = "/mlflow-steps-io"
MODEL_URI_OUTPUT = "model-uri"
RUNTIME = ["python", "-m", "mlflow_steps_runtime"]


def runtime_args(runtime_flags: list[str]) -> list[str]:
    return [
        "/project",
        "--env-file",
        f"{IO_DIR}/env.json",
        "--output",
        f"{IO_DIR}/output",
        "--model-uri-output",
        f"{IO_DIR}/{MODEL_URI_OUTPUT}",
        *runtime_flags,
    ]


def engine_run_argv(
    engine: str, image: str, project: Path, io_dir: Path, flags: list[str], insecure: bool
) -> list[str]:
    """docker/podman: one command; the image's entrypoint is the runtime module."""
    # The codeset is only read: mounted read-only, so an entry point cannot change it.
    mounts = ["-v", f"{project}:/project:ro", "-v", f"{io_dir}:{IO_DIR}"]
    extra = ["--tls-verify=false"] if insecure and engine == "podman" else []
    return [
        engine,
        "run",
        "--rm",
        *extra,
        "--network=host",
        "-w",
        "/project",
        *mounts,
        image,
        *runtime_args(flags),
    ]


def buildah_run(
    image: str, project: Path, io_dir: Path, flags: list[str], insecure: bool
) -> Finished:
    tls = f"--tls-verify={str(not insecure).lower()}"
    created = subprocess.run(
        ["buildah", "from", "--quiet", tls, image], capture_output=True, text=True
    )
    if created.returncode != 0:
        raise StepError(f"buildah cannot use image {image}: {created.stderr.strip()[-500:]}")
    container = created.stdout.strip().splitlines()[-1]
    try:
        digest = image_digest(container)
        return run_logged(
            [
                "buildah",
                "run",
                "--isolation",
                "chroot",
                *(["--env", f"MLFLOW_STEPS_IMAGE_DIGEST={digest}"] if digest else []),
                "-v",
                f"{project}:/project:ro",
                "-v",
                f"{io_dir}:{IO_DIR}",
                "--workingdir",
                "/project",
                container,
                "--",
                *RUNTIME,
                *runtime_args(flags),
            ]
        )
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True)


def image_digest(container: str) -> str:
    """The manifest digest of the image a buildah container was made from ("" if unknown)."""
    found = subprocess.run(
        [
            "buildah",
            "inspect",
            "--type",
            "container",
            "--format",
            "{{.FromImageDigest}}",
            container,
        ],
        capture_output=True,
        text=True,
    )
    digest = found.stdout.strip() if found.returncode == 0 else ""
    return digest if digest.startswith("sha256:") else ""

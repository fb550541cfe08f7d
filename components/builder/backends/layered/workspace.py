"""A working container of the base image (buildah), where the base's Python is probed and the
missing distributions installed; its root is mounted on the host, where the layers are cut.

Nothing of it is committed: the container and its mount are removed at the end. Index
settings reach uv through a file in the container's /tmp (sourced by the command), never a
command line, so they show in no process list or log; the file is deleted once the wheels
are in, before anything in the venv runs (`install`).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from ....problems import StepError
from ....processes import Finished, failure, run_logged
from ...planning.plan import find_uv
from ...reading.uv_options import INDEX_STRATEGY
from .wheels import Target

STAGING = "/tmp/mlflow-steps"
PROBE = (
    "import json, platform, sys; libc = platform.libc_ver(); print(json.dumps({'python': "
    "platform.python_version(), 'machine': platform.machine(), 'glibc': libc[1] if libc[0] == "
    "'glibc' else '', 'executable': sys.executable}))"
)
FIND_PYTHON = 'p="$(command -v python3 || command -v python)" && exec "$p" -I -S "$@"'


class Workspace:
    def __init__(self, base: str, insecure: bool, index_env: dict[str, str],
                 scripts: dict[str, bytes]) -> None:  # fmt: skip
        """`index_env`: uv's index settings; `scripts`: the plan's in-container scripts
        (compile-bytecode.py, check-libraries.py), by name."""
        self.base = base
        self.insecure = insecure
        self.index_env = index_env
        self.scripts = scripts
        self.container = ""
        self.root = Path("/nonexistent")
        self.python = ""  # the base's interpreter, as `probe` found it

    def __enter__(self) -> Workspace:
        self.container = self.buildah(
            "from", "--quiet", f"--tls-verify={str(not self.insecure).lower()}", self.base
        ).split()[-1]
        self.root = Path(self.buildah("mount", self.container).strip())
        staging = self.path(STAGING)
        staging.mkdir(parents=True, exist_ok=True)
        uv = find_uv()
        if not uv:
            raise StepError("per-package layering needs uv, and it is not installed here")
        shutil.copy2(uv, staging / "uv")
        for name, data in self.scripts.items():
            (staging / name).write_bytes(data)
        lines = [f"export {name}={shlex.quote(value)}" for name, value in self.index_env.items()]
        (staging / "index.env").write_text("\n".join(["export UV_NO_CACHE=1", *lines]) + "\n")
        return self

    def __exit__(self, *exc) -> None:
        if self.container:
            self.buildah("umount", self.container, check=False)
            self.buildah("rm", self.container, check=False)

    def path(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")

    def buildah(self, *argv: str, check: bool = True) -> str:
        try:
            done = subprocess.run(["buildah", *argv], capture_output=True, text=True)
        except FileNotFoundError:
            raise StepError(
                "per-package layering runs buildah, which is not installed here"
            ) from None
        if check and done.returncode != 0:
            raise StepError(
                f"buildah {argv[0]} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}"
            )
        return done.stdout

    def run(self, *argv: str, quiet: bool = False, what: str = "",
            answer: bool = True) -> str:  # fmt: skip
        """Run `argv` in the container; its log goes to our stderr unless `quiet` (its stdout
        too, unless `answer`), and a failure's error ends with its last lines, `quiet` or not.
        Returns its stdout ("" unless `answer`)."""
        done = run_logged(
            ["buildah", "run", self.container, "--", *argv], capture_stdout=answer, quiet=quiet
        )
        if done.returncode != 0:
            raise StepError(
                failure(
                    f"{what or ' '.join(argv[-3:])}, in a container of the base image {self.base},",
                    done,
                    isolation_hint(done) + "No image was pushed and no output was written.",
                )
            )
        return done.stdout

    def probe(self) -> Target:
        """The base's Python version, machine and glibc. The answer is written to a file in the
        container and read through the mount: `buildah run`'s stdout once came back empty
        under load (exit 0), and a file does not depend on that pipe."""
        answer = self.path(f"{STAGING}/probe.json")
        self.run("sh", "-c", f'{FIND_PYTHON} > {STAGING}/probe.json', "sh", "-c", PROBE,
                 quiet=True, what="the base's Python probe")  # fmt: skip
        try:
            found = json.loads(answer.read_text())
        except (OSError, ValueError):
            raise StepError(
                f"the base image {self.base}: its Python could not be probed (python3 -c "
                "'import platform' gave no answer); choose a base with python3, or "
                "layering=single"
            ) from None
        self.python = found["executable"]
        return Target(python=found["python"], machine=found["machine"], glibc=found["glibc"])

    def install(self, venv: str, site: str, pinned_lines: list[str], compile_bytecode: bool,
                python: str = "") -> None:  # fmt: skip
        """Two `buildah run`s. The download phase, with the index settings: a venv of the
        base's interpreter (`python`, else the one `probe` found) and exactly these wheels
        (hash-checked, `--no-build`: no package's code runs; no dependencies resolved again;
        none: the venv alone). Then the settings file is deleted, and the install phase runs
        without them: bytecode and the library check, by the venv's interpreter isolated
        (`-I -S`: no environment, no site, no `.pth` file of a wheel runs)."""
        python = python or self.python
        steps = [f'"$u" venv --quiet --python "$p" {venv}']
        if pinned_lines:
            self.path(f"{STAGING}/missing.txt").write_text("\n".join(pinned_lines) + "\n")
            steps.append(
                f'"$u" pip install --quiet --no-deps --require-hashes --no-build '
                f"--index-strategy={INDEX_STRATEGY} --python {venv}/bin/python "
                f"-r {STAGING}/missing.txt"
            )
        script = f'. {STAGING}/index.env && u={STAGING}/uv && p="$1" && ' + " && ".join(steps)
        self.run("sh", "-c", script, "sh", python, what="the venv and its wheels", answer=False)
        self.path(f"{STAGING}/index.env").unlink(missing_ok=True)
        checks = []
        if compile_bytecode:
            checks.append(f"{venv}/bin/python -I -S {STAGING}/compile-bytecode.py {site}")
        checks.append(f"{venv}/bin/python -I -S {STAGING}/check-libraries.py {site}")
        self.run("sh", "-c", " && ".join(checks), what="bytecode and the library check",
                 answer=False)  # fmt: skip

    def remove_staging(self) -> None:
        shutil.rmtree(self.path(STAGING), ignore_errors=True)


def isolation_hint(done: Finished) -> str:
    """What to try when `buildah run` itself could not make the container (not the command in
    it): its default isolation (oci, through crun or runc) needs cgroups and namespaces that a
    pod or a VM may not give; chroot isolation needs neither."""
    said = " ".join(done.tail).lower()
    if os.environ.get("BUILDAH_ISOLATION") == "chroot":
        return ""
    if any(word in said for word in ("cgroup", "crun", "runc", "oci runtime")):
        return (
            "buildah could not create the container with its default isolation: set "
            "BUILDAH_ISOLATION=chroot (as the builder images do) and build again. "
        )
    return ""


def index_environment(build_args: dict[str, str]) -> dict[str, str]:
    """uv's names for the PIP_* index settings (as install-python-env.sh maps them)."""
    names = {
        "PIP_INDEX_URL": "UV_INDEX_URL",
        "PIP_EXTRA_INDEX_URL": "UV_EXTRA_INDEX_URL",
        "PIP_TRUSTED_HOST": "UV_INSECURE_HOST",
    }
    return {names[key]: value for key, value in build_args.items() if key in names and value}

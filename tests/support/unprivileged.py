"""The builder's CLI as an unprivileged user: uid/gid 65532 (the generated pods' user), HOME in
a fresh folder, PATH holding only a venv of the builder's own dependencies (installed from the
test index), so no buildah, podman or docker can be found; the package itself is copied beside
it (the test runner's copy may sit under a root-only home)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import mlflow_steps
import mlflow_steps.components
import mlflow_steps.generators
import mlflow_steps.pipelines
from tests.support.require import require, require_root, require_tools

USER = 65532
ENGINES = ("buildah", "podman", "docker", "kaniko")


def world_readable(path: Path) -> bool:
    """Every folder above `path` is searchable by others, and it is readable."""
    path = path.resolve()
    return all(os.stat(p).st_mode & 0o005 == 0o005 for p in [path, *path.parents])


def base_interpreter() -> str:
    """An interpreter of this minor version that uid 65532 can run."""
    here = Path(sys.executable).resolve()
    if world_readable(here.parent):
        return str(here)
    system = Path("/usr/bin/python{}.{}".format(*sys.version_info[:2]))
    require(system.exists(), f"needs {system} (the test runner's Python is not world-readable)")
    return str(system)


def dependencies() -> list[str]:
    """mlflow-steps' own requirements (no extras), from its installed metadata."""
    found = []
    for line in metadata.requires("mlflow-steps") or []:
        if "extra ==" not in line:
            found.append(line)
    return found


class Unprivileged:
    """A folder (world-readable) with `venv/`, `pkg/` (mlflow_steps with its subpackages),
    `home/` (owned by the user) and `work/` (the user's to write outputs into)."""

    def __init__(self, index_url: str) -> None:
        require_root()
        require_tools("setpriv")
        self.root = Path(tempfile.mkdtemp(prefix="mlflow-steps-unprivileged-"))
        self.root.chmod(0o755)
        self.venv, self.pkg = self.root / "venv", self.root / "pkg"
        self.home, self.work = self.root / "home", self.root / "work"
        uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
        subprocess.run([uv, "venv", "--quiet", "--python", base_interpreter(), str(self.venv)],
                       check=True, capture_output=True)  # fmt: skip
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", str(self.venv / "bin" / "python"),
             "--index-url", index_url, "--no-config", *dependencies()],
            check=True, capture_output=True,
            env={**os.environ, "UV_CACHE_DIR": str(self.root / "uv")},
        )  # fmt: skip
        shutil.rmtree(self.root / "uv", ignore_errors=True)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        target = self.pkg / "mlflow_steps"
        shutil.copytree(mlflow_steps.__path__[0], target, ignore=ignore)
        for name, module in (("components", mlflow_steps.components),
                             ("generators", mlflow_steps.generators),
                             ("pipelines", mlflow_steps.pipelines)):  # fmt: skip
            if not (target / name).exists():
                shutil.copytree(module.__path__[0], target / name, ignore=ignore)
        for folder in (self.home, self.work):
            folder.mkdir()
            os.chown(folder, USER, USER)
        subprocess.run(["chmod", "-R", "a+rX", str(self.venv), str(self.pkg)], check=True)

    @property
    def path(self) -> str:
        return str(self.venv / "bin")

    def run(self, argv: list[str]) -> subprocess.CompletedProcess:
        """`argv` (argv[0] `python` means the venv's) as uid/gid 65532, no supplementary
        groups, no new privileges, an environment of PATH, HOME and PYTHONPATH only."""
        for engine in ENGINES:
            assert shutil.which(engine, path=self.path) is None
        if argv[0] == "python":
            argv = [str(self.venv / "bin" / "python"), *argv[1:]]
        env = {"PATH": self.path, "HOME": str(self.home), "PYTHONPATH": str(self.pkg),
               "LANG": "C.UTF-8"}  # fmt: skip
        setpriv = [shutil.which("setpriv") or "setpriv", f"--reuid={USER}", f"--regid={USER}",
                   "--clear-groups", "--no-new-privs"]  # fmt: skip
        return subprocess.run([*setpriv, *argv], capture_output=True, text=True, env=env,
                              cwd=self.work)  # fmt: skip

    def readable_copy(self, folder: Path, name: str) -> Path:
        """A copy of `folder` the user can read."""
        copy = self.root / name
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run(["chmod", "-R", "a+rX", str(copy)], check=True)
        return copy

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

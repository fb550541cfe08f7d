"""The main job, as the README says to run it: `bash scripts/demo` (set-up, then
examples/demo.py), with a fresh state folder, so an empty registry, an empty layer cache and a
new tracking server; then again, where the builder finds the image and builds nothing.

Only the downloads are shared with the rest of the suite: the state's `cache` folder (the
wheelhouse and the debootstrapped Debian tarball, which the demo keeps there between runs) is
the tests' own cache. The base image is pushed into the new registry and the image built,
cold, as on a fresh machine. The demo's ports (27500 to 27502) must be free."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from mlflow_steps.stack import DEFAULT_PORTS
from tests.support.images import CACHE, remove_local_images
from tests.support.require import require_root, require_tools

ROOT = Path(__file__).resolve().parent.parent
# The first run on this 2-core machine: set-up, stack, base push, a cold build, one training
# run; under load it has taken over 8 minutes.
TIMEOUT = 1500


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def demo(env: dict[str, str]) -> subprocess.CompletedProcess:
    """`bash scripts/demo` from the checkout's root; on a timeout, SIGINT to its process group
    (the demo stops the stack's servers on the way out), then the test fails."""
    process = subprocess.Popen(
        ["bash", "scripts/demo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=120)
        pytest.fail(f"bash scripts/demo took over {TIMEOUT} s:\n{err[-5000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def outputs(done: subprocess.CompletedProcess) -> dict[str, str]:
    """The demo's stdout, exactly three `name: value` lines."""
    lines = done.stdout.splitlines()
    assert len(lines) == 3, done.stdout
    return dict(line.split(": ", 1) for line in lines)


@pytest.mark.e2e
def test_the_main_job_runs_on_an_empty_stack_then_finds_its_image(tmp_path):
    require_root()
    require_tools("docker-registry", "buildah", "podman", "debootstrap")
    busy = [port for port in DEFAULT_PORTS.values() if port_open(port)]
    assert not busy, f"the demo's ports {busy} are taken: stop what listens there first"
    state = tmp_path / "state"
    state.mkdir()
    (state / "cache").symlink_to(CACHE)  # the downloads only: wheelhouse, Debian tarball
    env = {**os.environ, "MLFLOW_STEPS_STACK_STATE": str(state)}
    image = ""
    try:
        first = demo(env)
        assert first.returncode == 0, first.stderr[-6000:]
        shown = outputs(first)
        image = shown["image"]
        registry = f"127.0.0.1:{DEFAULT_PORTS['registry']}"
        assert re.fullmatch(rf"{re.escape(registry)}/[a-z0-9/_.-]+:[0-9a-f]{{24}}", image), image
        assert shown["model"].startswith("mlflow-artifacts:/"), shown
        assert f"{image.rpartition(':')[0]}" in first.stderr
        assert "not in the registry: building" in first.stderr
        assert "per-package layers: uploaded" in first.stderr  # cold: every layer built here
        assert "nothing to build" not in first.stderr

        second = demo(env)
        assert second.returncode == 0, second.stderr[-6000:]
        again = outputs(second)
        assert again["image"] == image
        assert again["model"].startswith("mlflow-artifacts:/") and again["model"] != shown["model"]
        assert "is already in the registry: nothing to build" in second.stderr
        assert "per-package layers" not in second.stderr
    finally:
        # The training runs pulled the image, the build the base: no local copies left behind.
        base = f"127.0.0.1:{DEFAULT_PORTS['registry']}/base/debian:bookworm"
        remove_local_images(*([image] if image else []), base)


def load_demo():
    spec = importlib.util.spec_from_file_location("demo", ROOT / "examples" / "demo.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("printed", "expected"),
    [
        ("ref:1\n", "ref:1"),
        ("mlflow-steps: bytecode for 4358 files (0 left as source) in 4.0 s\nref:1\n", None),
        ("", None),
        ("ref:1\nref:2\n", None),
    ],
)
def test_the_demo_takes_a_commands_stdout_as_its_one_output_line_or_says_why_not(
    printed, expected, tmp_path, monkeypatch
):
    """examples/demo.py reads `build`'s and `run`'s stdout strictly: one line, or a clear
    error naming what was printed (a stand-in `mlflow_steps` module prints it here)."""
    fake = tmp_path / "mlflow_steps"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(f"import sys\nsys.stdout.write({printed!r})\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    monkeypatch.chdir(tmp_path)  # `python -m` looks in the working directory first
    demo_module = load_demo()
    if expected is not None:
        assert demo_module.step(env, ["build", "x"]) == expected
        return
    with pytest.raises(demo_module.StepFailed) as failed:
        demo_module.step(env, ["build", "x"])
    lines = len(printed.splitlines())
    assert f"`mlflow-steps build x` printed {lines} line(s) on stdout" in str(failed.value)
    assert repr(printed) in str(failed.value)


def test_the_demo_says_which_command_failed(tmp_path, monkeypatch):
    fake = tmp_path / "mlflow_steps"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text("raise SystemExit(3)\n")
    monkeypatch.chdir(tmp_path)
    demo_module = load_demo()
    with pytest.raises(demo_module.StepFailed, match=r"`mlflow-steps run x` failed \(exit 3\)"):
        demo_module.step({**os.environ, "PYTHONPATH": str(tmp_path)}, ["run", "x"])

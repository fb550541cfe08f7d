"""The engine-less build's pieces that need no server: the platform it resolves for, the venv
skeleton it writes, the wheel a base's glibc admits, and which codesets it refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_steps.components.builder.backends.layered.assemble import Fallback, refuse_sdists
from mlflow_steps.components.builder.backends.layered.base_files import BaseFacts
from mlflow_steps.components.builder.backends.layered.engineless import (
    same_resolution,
    skeleton,
    uv_platform,
)
from mlflow_steps.components.builder.backends.layered.wheels import Target, pins_for
from mlflow_steps.components.builder.build import engineless_reason
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.builder.planning.plan import InstallPlan
from mlflow_steps.components.builder.planning.resolution import Distribution, DistributionFile

VENV = "/opt/mlflow-env"


def test_the_platform_follows_the_bases_glibc_within_what_uv_names():
    assert uv_platform(Target("3.11.2", "x86_64", "2.36")) == "x86_64-manylinux_2_36"
    assert uv_platform(Target("3.13.5", "x86_64", "2.41")) == "x86_64-manylinux_2_40"
    assert uv_platform(Target("3.9.2", "aarch64", "2.28")) == "aarch64-manylinux_2_28"
    with pytest.raises(Fallback, match=r"glibc 2\.12 is older than manylinux2014"):
        uv_platform(Target("3.8.0", "x86_64", "2.12"))


def test_the_lock_resolved_for_a_guess_is_kept_only_when_the_base_resolves_the_same():
    """The guess (resolved while the base is read) against the base's own Python and glibc:
    the patch version does not matter; the minor version, the machine and uv's platform do."""
    guess = Target("3.11.7", "x86_64", "2.36")
    assert same_resolution(guess, Target("3.11.2", "x86_64", "2.36"))
    assert not same_resolution(guess, Target("3.13.5", "x86_64", "2.36"))
    assert not same_resolution(guess, Target("3.11.2", "x86_64", "2.31"))
    assert not same_resolution(guess, Target("3.11.2", "aarch64", "2.36"))
    assert not same_resolution(guess, Target("3.11.2", "x86_64", "2.12"))  # refused: Fallback
    # glibc beyond the newest tag uv names resolves as that tag does
    assert same_resolution(Target("3.13.0", "x86_64", "2.40"), Target("3.13.5", "x86_64", "2.41"))


def wheel(name: str) -> DistributionFile:
    return DistributionFile(name, f"http://index/{name}", "ab" * 32)


def test_an_older_glibc_takes_the_wheel_it_can_load_or_is_refused_clearly():
    dist = Distribution("fast", "1.0", files=(
        wheel("fast-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"),
        wheel("fast-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
    ))  # fmt: skip
    new, old = Target("3.11.2", "x86_64", "2.36"), Target("3.11.2", "x86_64", "2.17")
    assert "manylinux_2_28" in (pins_for([dist], new, set())[0].wheel_url or "")
    assert "manylinux2014" in (pins_for([dist], old, set())[0].wheel_url or "")
    only_new = Distribution("fast", "1.0", files=(dist.files[0],))
    pins = pins_for([only_new], old, set())
    with pytest.raises(Fallback, match=r"no wheel for this base .*glibc 2\.17.* of fast 1\.0"):
        refuse_sdists(pins, old)


def test_the_skeleton_runs_the_bases_interpreter_as_a_venv(tmp_path):
    """The skeleton pointed at this machine's own interpreter: it starts as a venv."""
    python = os.path.realpath(sys.executable)
    version = "{}.{}.{}".format(*sys.version_info[:3])
    facts = BaseFacts(version, "x86_64", "2.36", python, frozenset())
    skeleton(tmp_path, facts)
    venv = tmp_path / VENV.lstrip("/")
    config = (venv / "pyvenv.cfg").read_text()
    assert f"home = {Path(python).parent}\n" in config and f"version_info = {version}" in config
    assert os.readlink(venv / "bin" / "python") == python
    assert (
        os.readlink(venv / "bin" / "python3") == "python" and os.readlink(venv / "lib64") == "lib"
    )
    site = "lib/python{}.{}/site-packages".format(*sys.version_info[:2])
    assert (venv / site).is_dir()
    asked = "import sys; print(sys.prefix, sys.prefix != sys.base_prefix)"
    done = subprocess.run([venv / "bin" / "python", "-c", asked], capture_output=True, text=True)
    assert done.stdout.split() == [str(venv), "True"], done.stderr


@pytest.mark.parametrize(
    ("plan", "options", "reason"),
    [
        (InstallPlan("conda", "conda", "miniconda"), BuildOptions(), "env_manager=conda"),
        (InstallPlan("docker_env", "runtime", "img"), BuildOptions(), "is not a venv"),
        (
            InstallPlan("pip", "venv", "python:3.11", system_packages=("libgomp1",)),
            BuildOptions(),
            "system_packages is set",
        ),
        (
            InstallPlan("pip", "venv", "python:3.11"),
            BuildOptions(layering="single"),
            "layering=single",
        ),
        (InstallPlan("pip", "venv", "python:3.11"), BuildOptions(), ""),
    ],
)
def test_what_the_engine_less_build_refuses_before_anything_runs(plan, options, reason):
    found = engineless_reason(plan, options)
    assert (reason in found) if reason else found == ""


def test_the_bases_own_interpreter_starts_without_the_builders_credentials(tmp_path, monkeypatch):
    """When no interpreter of the base's minor version is on the builder, the base's own is
    run from its files: in a minimal environment (subprocess_env), never with the index
    netrc, DOCKER_CONFIG or a token the builder holds (found by this round's attack review:
    it inherited the builder's whole environment). The base here is a stand-in script that
    writes the environment it got, then runs this Python."""
    from mlflow_steps.components.builder.backends.layered import engineless

    seen = tmp_path / "env-seen"
    base_python = tmp_path / "python"
    base_python.write_text(f'#!/bin/sh\nenv > {seen}\nexec {sys.executable} "$@"\n')
    base_python.chmod(0o755)
    monkeypatch.setattr(engineless.host_install, "interpreter_for", lambda minor: None)
    monkeypatch.setattr(engineless, "interpreter_argv", lambda root, facts: [str(base_python)])
    monkeypatch.setenv("MLFLOW_STEPS_INDEX_NETRC", "machine idx login u password s3cret")
    monkeypatch.setenv("DOCKER_CONFIG", "/secrets/registry")
    version = "{}.{}.{}".format(*sys.version_info[:3])
    facts = BaseFacts(version, "x86_64", "2.36", "/usr/bin/python3", frozenset())
    assert engineless.compiler_for(facts, lambda: tmp_path) == [str(base_python)]
    env = seen.read_text()
    assert "s3cret" not in env and "MLFLOW_STEPS_INDEX_NETRC" not in env
    assert "DOCKER_CONFIG" not in env

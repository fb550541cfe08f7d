"""A hostile codeset or input makes `mlflow-steps build` and `inspect` exit non-zero before any
engine runs, and writes nothing (issue 23, items 3, 4, 5, 8, 9), against a real registry.

Every build engine (buildah, podman, docker, Kaniko's executor) is replaced on PATH by a shim
that records being started: the shims must never run. The registry's catalog must not change
and no --output or --digest-output file may appear.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from mlflow_steps.stack import build_argv
from tests.components.builder.reading.test_grammar import BOMB, DIGEST, SECRET_RUN

pytestmark = pytest.mark.e2e

MAIN = "name: t\nentry_points:\n  main:\n    command: python train.py\n"
ENGINES = ("buildah", "podman", "docker", "executor")


def hostile_codesets(secret: Path) -> dict[str, tuple[dict[str, str], list[str], str]]:
    """name -> (files, extra flags, what the error names)."""
    return {
        "docker_env image by digest with a RUN line": (
            {
                "MLproject": MAIN
                + "docker_env:\n  image: "
                + json.dumps(f'python@{DIGEST}"\n{SECRET_RUN}\n#')
                + "\n"
            },
            [],
            "docker_env `image`",
        ),
        "python_env.yaml python with a RUN line": (
            {
                "MLproject": MAIN,
                "python_env.yaml": "python: "
                + json.dumps(f'3.11@{DIGEST}"\n{SECRET_RUN}\n#')
                + "\ndependencies: [six]\n",
            },
            [],
            "python_env.yaml: `python`",
        ),
        "conda.yaml bomb": ({"MLproject": MAIN, "conda.yaml": BOMB}, [], "alias *a"),
        "quoted option value hiding an include": (
            {
                "MLproject": MAIN,
                "requirements.txt": f'six\n--index-url "http://127.0.0.1:9/simple/ -r {secret}"\n',
            },
            [],
            "pip would split it",
        ),
        "mlflow_requirement URL with ${VAR}": (
            {"MLproject": MAIN, "requirements.txt": "six\n"},
            ["--mlflow-requirement", "x @ http://127.0.0.1:9/x.whl?q=${PIP_INDEX_URL}"],
            "mlflow_requirement",
        ),
        "MLproject parameter name with a shell command": (
            {
                "MLproject": MAIN + '    parameters:\n      "x;touch${IFS}pwned;y": float\n',
                "requirements.txt": "six\n",
            },
            [],
            "not a parameter name",
        ),
    }


@pytest.fixture
def shims(tmp_path):
    """A PATH whose build engines only record that they were started."""
    folder = tmp_path / "shims"
    folder.mkdir()
    started = tmp_path / "engine-started"
    for name in ENGINES:
        shim = folder / name
        shim.write_text(f'#!/bin/sh\necho "$0 $*" >> {started}\nexit 1\n')
        shim.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}", started


def catalog(registry) -> list[str]:
    reply = requests.get(f"http://{registry.host}/v2/_catalog", timeout=10)
    reply.raise_for_status()
    return reply.json()["repositories"]


CASES = list(hostile_codesets(Path("/x")))


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_codeset_stops_before_any_engine_and_writes_nothing(
    tmp_path, registry, shims, case
):
    secret = tmp_path / "abs-file"
    secret.write_text("leaked-package\n")
    files, flags, names = hostile_codesets(secret)[case]
    codeset = tmp_path / "codeset"
    for name, text in files.items():
        (codeset / name).parent.mkdir(parents=True, exist_ok=True)
        (codeset / name).write_text(text)
    path, started = shims
    env = {**os.environ, "PATH": path}
    before = catalog(registry)
    out = tmp_path / "out" / "image"
    for layering in ("per-package", "single"):
        argv = build_argv(codeset, registry.host, repository="hostile/trainer", output=out)
        argv += ["--digest-output", f"{out}.digest", f"--layering={layering}", *flags]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode != 0
        assert names in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
    inspect = [sys.executable, "-m", "mlflow_steps", "inspect", str(codeset), *flags]
    done = subprocess.run(inspect, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode != 0 and names in done.stderr, done.stderr[-2000:]
    assert not started.exists(), started.read_text()
    assert not out.parent.exists()
    assert catalog(registry) == before
    assert not (codeset / "pwned").exists()

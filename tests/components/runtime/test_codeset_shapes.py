"""Project shapes MLflow 3.17 accepts or crashes on, run as the step runs them (`python -m`,
host MLflow, a real SQLite store): `parameters:` with no value, a docker_env project inside its
image, parameters named like the step's own inputs, and a codeset in a subfolder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.components.runtime.test_bad_inputs import run_step

LOG_VALUE = """\
import os, sys, mlflow
with open("value.txt", "w") as f:
    f.write(" ".join(sys.argv[1:]) or os.environ.get("GREETING", ""))
mlflow.log_artifact("value.txt")
"""


def codeset(root, mlproject: str):
    root.mkdir(parents=True)
    (root / "MLproject").write_text(mlproject)
    (root / "log_value.py").write_text(LOG_VALUE)
    return root


def test_a_docker_env_project_with_null_parameters_runs_in_place_with_its_environment(tmp_path):
    """MLflow 3.17.2 crashes on `parameters:` with no value, and would start Docker for a
    docker_env project: the step reads no parameters and runs it where it is (its image)."""
    root = codeset(
        tmp_path / "c",
        "name: d\ndocker_env:\n  image: my/image:1\n  environment: [[GREETING, hello]]\n"
        "entry_points:\n  main:\n    parameters:\n    command: python log_value.py\n",
    )
    done, output, _ = run_step(root, tmp_path, "--artifact-path", "value.txt")
    assert done.returncode == 0, done.stderr
    assert Path(output.read_text()).read_text() == "hello"


RESERVED = """\
name: reserved
entry_points:
  main:
    parameters:
      verbose: {type: int, default: 1}
      mlflow_experiment: {type: string, default: mine}
      context: {type: string, default: here}
    command: "python log_value.py {verbose} {mlflow_experiment} {context}"
"""


def test_a_codeset_in_a_subfolder_whose_parameters_share_the_step_inputs_names(
    tmp_path, monkeypatch
):
    """The codeset is two folders down the workspace; FUSEML_VERBOSE, FUSEML_MLFLOW_EXPERIMENT
    and FUSEML_CONTEXT are the step's inputs and never fill the parameters of those names:
    mlflow_entrypoint_args or the defaults do."""
    workspace = tmp_path / "repo"
    codeset(workspace / "projects" / "wine", RESERVED)
    for name, value in {
        "FUSEML_VERBOSE": "false",
        "FUSEML_MLFLOW_EXPERIMENT": "step-experiment",
        "FUSEML_CONTEXT": "projects/wine",
    }.items():
        monkeypatch.setenv(name, value)
    done, output, _ = run_step(
        workspace, tmp_path, "--artifact-path", "value.txt", "--entrypoint-args", "verbose=3"
    )
    assert done.returncode == 0, done.stderr
    assert "in experiment 'step-experiment'" in done.stderr
    assert Path(output.read_text()).read_text() == "3 mine here"


@pytest.mark.parametrize("context", ["..", "/etc", "projects/../../x", "ABSOLUTE-INSIDE"])
def test_a_context_outside_the_workspace_is_refused(tmp_path, context):
    """The builder's rule too (builder/test_codeset_shapes.py): an absolute path, even one
    inside the workspace, is refused by both, with the same message."""
    workspace = tmp_path / "repo"
    (workspace / "projects").mkdir(parents=True)
    if context == "ABSOLUTE-INSIDE":
        context = str(workspace / "projects")
    done, output, _ = run_step(workspace, tmp_path, "--context", context)
    assert done.returncode == 2
    assert f"context '{context}' is not a folder inside the workspace" in done.stderr
    assert not output.exists()

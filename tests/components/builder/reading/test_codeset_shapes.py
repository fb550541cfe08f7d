"""Project shapes of issue 15 as the builder and the CLI see them: each says what MLflow 3.17
does on the same folder, and what the steps do."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_steps.cli import main
from mlflow_steps.components.builder.reading.codeset import load_codeset
from mlflow_steps.components.problems import StepError
from mlflow_steps.components.runtime.inputs import InputError, parse_entrypoint_args

MAIN = "entry_points:\n  main:\n    command: python train.py\n"


def make(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_parameters_with_no_value_are_no_parameters(tmp_path):
    """MLflow 3.17.2: AttributeError in EntryPoint.__init__ (`mlflow run`, every run)."""
    mlproject = "entry_points:\n  main:\n    parameters:\n    command: python train.py\n"
    root = make(tmp_path, {"MLproject": mlproject, "requirements.txt": "six\n"})
    assert load_codeset(root).entry_points["main"].parameters == {}


@pytest.mark.parametrize("name", ["MLproject.yaml", "mlproject.yml", "MLProject.yaml"])
def test_an_mlproject_with_an_extension_gets_rename_it(tmp_path, capsys, name):
    """MLflow 3.17.2 reads no such file: the folder becomes a project without MLproject, and
    `mlflow run` fails with "Could not find main among entry points []"."""
    make(tmp_path, {name: MAIN, "requirements.txt": "six\n"})
    assert main(["inspect", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert f"{name} is not read by MLflow" in err and "rename it to MLproject" in err


def test_inspect_indents_every_line_of_a_multi_line_command(tmp_path, capsys):
    mlproject = "entry_points:\n  main:\n    command: |\n      python train.py\n        --x 1\n"
    make(tmp_path, {"MLproject": mlproject, "requirements.txt": "six\n"})
    assert main(["inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    start = out.index("  main()")
    assert out[start + 1 : start + 3] == ["      python train.py", "        --x 1"]
    assert "`command` has 2 lines, and MLflow runs it with `bash -c`" in "\n".join(out)
    continued = mlproject.replace("train.py\n", "train.py \\\n")
    make(tmp_path, {"MLproject": continued})
    assert main(["inspect", str(tmp_path)]) == 0
    assert "`command` has" not in capsys.readouterr().out


def test_an_unquoted_list_value_gets_a_hint_to_quote_it():
    with pytest.raises(InputError, match=r"must be quoted: layers='\[128,64\]'"):
        parse_entrypoint_args("layers=[128,64],epochs=2")
    assert parse_entrypoint_args("layers='[128,64]',epochs=2") == {
        "layers": "[128,64]",
        "epochs": "2",
    }


def test_a_parameter_named_like_a_step_input_is_warned_about(tmp_path, capsys):
    mlproject = (
        "entry_points:\n  main:\n    parameters:\n      verbose: {type: int, default: 1}\n"
        "    command: python train.py {verbose}\n"
    )
    make(tmp_path, {"MLproject": mlproject, "requirements.txt": "six\n"})
    assert main(["inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "parameter `verbose` has the name of the runtime step's input `verbose`" in out
    assert "only from mlflow_entrypoint_args (verbose=...) or its default" in out


def test_a_codeset_two_folders_down_is_read_there_and_may_include_workspace_files(tmp_path, capsys):
    make(
        tmp_path,
        {
            "constraints.txt": "six==1.16.0\n",
            "projects/wine/MLproject": MAIN,
            "projects/wine/requirements.txt": "six\n-c ../../constraints.txt\n",
        },
    )
    assert main(["inspect", str(tmp_path), "--context", "projects/wine"]) == 0
    out = capsys.readouterr().out
    assert f"codeset:      {tmp_path / 'projects/wine'}" in out
    with pytest.raises(StepError, match=r"no MLproject file and no \.py/\.sh script"):
        load_codeset(tmp_path)
    # One rule with the runtime step's (test_a_context_outside_the_workspace_is_refused): an
    # absolute path is refused even inside the workspace, which each step mounts elsewhere.
    for context in ["..", "/etc", str(tmp_path / "projects/wine"), "projects/../../x"]:
        assert main(["inspect", str(tmp_path), "--context", context]) != 0
        assert f"context {context!r} is not a folder inside the workspace" in (
            capsys.readouterr().err
        )


def test_docker_env_volumes_are_said_to_be_not_mounted(tmp_path, capsys):
    mlproject = "docker_env:\n  image: my/image:1\n  volumes: ['/data:/data']\n" + MAIN
    make(tmp_path, {"MLproject": mlproject})
    assert main(["inspect", str(tmp_path)]) == 0
    assert "docker_env `volumes` are not mounted by the steps" in capsys.readouterr().out


def test_the_local_engine_names_the_engines_that_run_a_docker_env_project(tmp_path, capsys):
    make(tmp_path, {"MLproject": "docker_env:\n  image: my/image:1\n" + MAIN})
    assert main(["run", str(tmp_path), "--engine", "local"]) != 0
    err = capsys.readouterr().err
    assert "docker_env project (image my/image:1)" in err
    assert "--engine buildah, podman or docker" in err
    assert "Traceback" not in err


def test_a_folder_without_mlproject_is_read_as_mlflow_reads_it(tmp_path):
    """MLflow 3.17.2 `_project_spec.load_project` with no MLproject: the default files decide
    the environment (python_env.yaml before requirements.txt here), else MLflow's default."""
    (tmp_path / "train.py").write_text("print('hi')\n")
    bare = load_codeset(tmp_path)
    assert bare.mlproject is None and bare.entry_points == {}
    assert bare.environment.kind == "python_env" and bare.environment.path is None
    assert any("no environment file" in w for w in bare.warnings)
    (tmp_path / "requirements.txt").write_text("six\n")
    assert load_codeset(tmp_path).environment.kind == "pip"
    (tmp_path / "python_env.yaml").write_text('python: "3.11"\ndependencies: [six]\n')
    found = load_codeset(tmp_path)
    assert found.environment.kind == "python_env" and found.environment.path is not None

"""Entry point and parameter checks, through MLflow's own project loader (host MLflow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_steps.components.runtime.inputs import InputError
from mlflow_steps.components.runtime.project import (
    check_entry_point,
    check_parameters,
    load_project,
)

MLPROJECT = """\
name: typed
entry_points:
  main:
    parameters:
      epochs: {type: int, default: 2}
      lr: {type: float, default: 0.1}
      data: {type: path, default: data.csv}
      source: {type: uri, default: "s3://b/k"}
      label: {type: string, default: x}
    command: python train.py
  evaluate:
    parameters:
      model: uri
    command: python eval.py {model}
"""


@pytest.fixture
def project(tmp_path: Path):
    (tmp_path / "MLproject").write_text(MLPROJECT)
    (tmp_path / "data.csv").write_text("a\n")
    (tmp_path / "helper.py").write_text("")
    return tmp_path, load_project(str(tmp_path))


def test_entry_points_come_from_mlflow_loader(project):
    path, loaded = project
    assert loaded.name == "typed" and set(loaded.entry_points) == {"main", "evaluate"}
    assert check_entry_point(loaded, "helper.py", str(path)) is None  # MLflow runs scripts too


def test_unknown_entry_point_lists_valid_ones(project):
    path, loaded = project
    with pytest.raises(InputError, match=r"unknown entry point 'train'.*evaluate, main"):
        check_entry_point(loaded, "train", str(path))


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"epochs": "abc"}, "parameter 'epochs' must be an int, got 'abc'"),
        ({"epochs": "2.5"}, "must be an int"),
        ({"lr": "fast"}, "parameter 'lr' must be a float"),
        ({"data": "missing.csv"}, "path 'missing.csv' does not exist"),
        ({"source": ""}, "'source' must be a URI with a scheme"),
        ({"source": "data.csv"}, "'source' must be a URI with a scheme .* got 'data.csv'"),
        ({"data": "file:///no/such/file.csv"}, "path 'file:///no/such/file.csv' does not exist"),
        ({"data": ""}, "'data' must be a non-empty path"),
    ],
)
def test_bad_parameter_values(project, values, fragment):
    path, loaded = project
    with pytest.raises(InputError, match=fragment):
        check_parameters(loaded.entry_points["main"], values, str(path))


def test_good_values_and_required_parameters(project):
    path, loaded = project
    good = {"epochs": "3", "lr": "1e-3", "data": "data.csv", "source": "s3://x/y"}
    assert check_parameters(loaded.entry_points["main"], good, str(path)) == good
    # MLflow accepts these: a `path` as a file: URI, one it downloads, an undeclared parameter
    # (appended to the command as --epoch 2), a `uri` of any scheme.
    accepted = {
        "data": (path / "data.csv").as_uri(),
        "epoch": "2",
        "source": "file:///anything",
    }
    assert check_parameters(loaded.entry_points["main"], accepted, str(path)) == accepted
    remote = {"data": "s3://bucket/data.csv"}
    assert check_parameters(loaded.entry_points["main"], remote, str(path)) == remote
    with pytest.raises(InputError, match=r"'model' .uri. is required"):
        check_parameters(loaded.entry_points["evaluate"], {}, str(path))


def test_bool_parameters_take_the_boolean_words_and_other_types_pass_through(tmp_path):
    (tmp_path / "MLproject").write_text(
        "entry_points:\n  main:\n    parameters:\n      flag: {type: bool, default: true}\n"
        "      enabled: {type: boolean, default: false}\n      note: {type: text, default: x}\n"
        "    command: python t.py\n"
    )
    entry = check_entry_point(load_project(str(tmp_path)), "main", str(tmp_path))
    values = {"flag": "False", "enabled": "yes", "note": "anything at all"}
    assert check_parameters(entry, values, str(tmp_path)) == values
    with pytest.raises(InputError, match="'flag' must be a boolean"):
        check_parameters(entry, {"flag": "maybe"}, str(tmp_path))


def test_a_folder_without_mlproject_runs_its_scripts_by_name(tmp_path):
    (tmp_path / "train.py").write_text("")
    (tmp_path / "prep.sh").write_text("")
    loaded = load_project(str(tmp_path))
    assert not loaded.has_mlproject and loaded.entry_points == {}
    assert loaded.env_type == "python_env"  # MLflow's default kind for such a folder
    assert check_entry_point(loaded, "train.py", str(tmp_path)) is None
    assert check_parameters(None, {"alpha": "0.3"}, str(tmp_path)) == {"alpha": "0.3"}
    with pytest.raises(InputError, match=r"no MLproject.*one of: prep.sh, train.py .got 'main'"):
        check_entry_point(loaded, "main", str(tmp_path))

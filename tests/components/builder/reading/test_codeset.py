"""Codeset detection: MLproject lookup, environment precedence, and agreement with MLflow's own
project loader on what the entry points and parameters are."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_steps.components.builder.build import plan
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.builder.reading.codeset import load_codeset

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"
MAIN = "entry_points:\n  main:\n    command: python t.py\n"


def codeset(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_mlproject_is_found_case_insensitively(tmp_path):
    found = load_codeset(codeset(tmp_path, {"MLProject": MAIN, "requirements.txt": "six\n"}))
    assert found.mlproject.name == "MLProject"


@pytest.mark.parametrize(
    ("files", "kind"),
    [
        ({"requirements.txt": "six\n", "conda.yaml": "dependencies: [python=3.10]\n"}, "conda"),
        ({"requirements.txt": "six\n", "python_env.yaml": "python: '3.10'\n"}, "python_env"),
        ({"requirements.txt": "six\n"}, "pip"),
    ],
)
def test_default_files_in_detection_order(tmp_path, files, kind):
    assert load_codeset(codeset(tmp_path, {"MLproject": MAIN, **files})).environment.kind == kind


def test_the_file_mlproject_names_wins(tmp_path):
    root = codeset(
        tmp_path, {"MLproject": "conda_env: envs/train.yaml\n" + MAIN, "requirements.txt": "six\n"}
    )
    (root / "envs").mkdir()
    (root / "envs" / "train.yaml").write_text("dependencies: [python=3.9]\n")
    env = load_codeset(root).environment
    assert env.kind == "conda" and env.path.name == "train.yaml"


def test_docker_env_builds_a_thin_image_that_adds_the_runtime_step(tmp_path):
    """MLflow 3.17 builds a thin image FROM the docker_env image too (with the project's code
    in it); here the code is mounted at run time, so only the runtime step's module is added,
    and the image's python is checked for MLflow at build time."""
    root = codeset(tmp_path, {"MLproject": "docker_env:\n  image: my/env:1.2\n" + MAIN})
    the_plan = plan(root, BuildOptions(registry="r:5000", repository="team/trainer"))
    assert the_plan.recipe is not None
    dockerfile = the_plan.recipe.dockerfile
    assert dockerfile.count("FROM ") == 1 and "FROM my/env:1.2\n" in dockerfile
    assert "COPY mlflow-steps-runtime/ /opt/mlflow-steps/mlflow_steps_runtime/" in dockerfile
    assert 'RUN python -c "import mlflow" ||' in dockerfile
    assert "ENV PYTHONPATH=/opt/mlflow-steps${PYTHONPATH:+:${PYTHONPATH}}" in dockerfile
    assert sorted({name.split("/")[0] for name in the_plan.recipe.files}) == [
        "mlflow-steps-runtime"
    ]
    assert the_plan.push_reference == f"r:5000/team/trainer:{the_plan.tag}"
    other = codeset(tmp_path / "o", {"MLproject": "docker_env:\n  image: my/env:1.3\n" + MAIN})
    assert plan(other, BuildOptions()).tag != the_plan.tag


@pytest.mark.parametrize("example", ["sklearn-pip", "conda-keras", "python-env"])
def test_entry_points_agree_with_mlflows_own_loader(example):
    from mlflow.projects import _project_spec

    ours = load_codeset(EXAMPLES / example)
    theirs = _project_spec.load_project(str(EXAMPLES / example))
    assert ours.name == theirs.name
    assert set(ours.entry_points) == set(theirs._entry_points)
    for name, entry in ours.entry_points.items():
        mlflow_entry = theirs._entry_points[name]
        assert entry.command == mlflow_entry.command
        assert {p: (v.type, v.default) for p, v in entry.parameters.items()} == {
            p: (v.type, v.default) for p, v in mlflow_entry.parameters.items()
        }


CASES = Path(__file__).resolve().parents[3] / "cases"
# Cases MLflow 3.17.2's own loader crashes on: `parameters:` with no value.
MLFLOW_CRASHES = {"docker-env": "'NoneType' object has no attribute 'items'"}


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_codeset_cases_agree_with_mlflows_own_loader(case):
    """MLflow accepts these shapes (no `python`, `bool`/`str`/`text` types); so does the builder."""
    from mlflow.projects import _project_spec

    ours = load_codeset(CASES / case)
    if case in MLFLOW_CRASHES:  # the builder reads it as no parameters, the runtime too
        with pytest.raises(AttributeError, match=MLFLOW_CRASHES[case]):
            _project_spec.load_project(str(CASES / case))
        assert all(not e.parameters for e in ours.entry_points.values())
        return
    theirs = _project_spec.load_project(str(CASES / case))
    for name, entry in ours.entry_points.items():
        assert {p: (v.type, v.default) for p, v in entry.parameters.items()} == {
            p: (v.type, v.default) for p, v in theirs._entry_points[name].parameters.items()
        }


def test_parameter_types_mlflow_does_not_check_pass_with_a_warning(tmp_path):
    mlproject = (
        "entry_points:\n  main:\n    parameters:\n      a: bool\n      b: {type: boolean}\n"
        "      c: str\n      d: {type: integer, default: 1}\n      e: {type: 7}\n"
        "    command: python t.py\n"
    )
    found = load_codeset(codeset(tmp_path, {"MLproject": mlproject, "requirements.txt": "six\n"}))
    types = {n: p.type for n, p in found.entry_points["main"].parameters.items()}
    assert types == {"a": "bool", "b": "boolean", "c": "str", "d": "integer", "e": "7"}
    assert len(found.warnings) == 2
    assert "parameter `d` has type `integer`, which MLflow does not check" in found.warnings[0]


def test_python_env_without_python_is_accepted_and_the_choice_is_explained(tmp_path):
    root = codeset(tmp_path, {"MLproject": MAIN, "python_env.yaml": "dependencies: [six]\n"})
    the_plan = plan(root, BuildOptions())
    assert the_plan.recipe and the_plan.recipe.base_image == "python:3.11"
    assert "using Python 3.11 (the python_version input)" in the_plan.warnings[0]
    other = plan(root, BuildOptions(python_version="3.12"))
    assert other.recipe and other.recipe.base_image == "python:3.12" and other.tag != the_plan.tag
    based = plan(root, BuildOptions(base_image="my/base:1"))
    assert "the base image's own Python is used" in based.warnings[0]
    pinned = codeset(
        tmp_path / "pinned", {"MLproject": MAIN, "python_env.yaml": "python: '3.10'\n"}
    )
    assert plan(pinned, BuildOptions()).warnings == []

"""conda.yaml without conda (env_manager=uv): the mapping table, the Python choice as MLflow
reads it, the refusals, and what the recipe and the tag make of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_steps.cli import main
from mlflow_steps.components.builder.build import plan
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.builder.reading import conda_to_pypi
from mlflow_steps.components.builder.reading.conda_to_pypi import conda_version, python_version
from mlflow_steps.components.builder.reading.environments import CondaEnv
from mlflow_steps.components.problems import StepError

MAIN = "entry_points:\n  main:\n    command: python t.py\n"


def conda_env(tmp_path: Path, text: str) -> CondaEnv:
    path = tmp_path / "conda.yaml"
    path.write_text(text)
    problems: list[str] = []
    env = CondaEnv.load(path, problems)
    assert env is not None, problems
    return env


def convert(env: CondaEnv) -> conda_to_pypi.PypiEnvironment:
    return conda_to_pypi.convert(env.where, env.channels, env.dependencies, env.pip)


@pytest.mark.parametrize(
    ("rest", "specifier"),
    [
        ("", ""),
        ("=1.2", "==1.2.*"),
        ("=1.2.*", "==1.2.*"),
        ("1.2*", "==1.2.*"),
        ("==1.2.3", "==1.2.3"),
        ("1.2.3", "==1.2.3"),
        ("1.2.3 py39_0", "==1.2.3"),
        ("=1.2.3=py39_0", "==1.2.3.*"),
        (">=1.14.3", ">=1.14.3"),
        (">0.19.1", ">0.19.1"),
        (">=1.2,<2", "<2,>=1.2"),
        ("[version='>=1.2']", ">=1.2"),
    ],
)
def test_conda_versions_become_pep440_specifiers(rest, specifier):
    assert conda_version(rest) == specifier


@pytest.mark.parametrize(("rest", "message"), [("1.2|1.3", "`|`"), ("=abc!", "not a version")])
def test_conda_versions_pip_cannot_express_are_refused(rest, message):
    with pytest.raises(ValueError, match=message):
        conda_version(rest)


@pytest.mark.parametrize(
    ("rest", "version"),
    [("=3.10", "3.10"), ("==3.10.4", "3.10"), (">=3.9", "3.9"), ("<=3.11", "3.11"), ("3.8", "3.8")],
)
def test_python_pin_as_mlflow_reads_it(rest, version):
    assert python_version(rest) == version


@pytest.mark.parametrize("rest", ["", "<3.10", ">3.8", "!=3.9"])
def test_python_specs_mlflow_rejects_are_rejected(rest):
    with pytest.raises(ValueError):
        python_version(rest)


def test_classic_mlflow_example_keeps_every_conda_dependency(tmp_path):
    """The shape of MLflow's classic sklearn example: MLflow's own conversion drops these."""
    env = conda_env(
        tmp_path,
        "name: tutorial\nchannels: [defaults]\ndependencies:\n  - numpy>=1.14.3\n"
        "  - pandas>=1.0.0\n  - scikit-learn>0.19.1\n  - pip\n  - pip:\n    - mlflow\n",
    )
    converted = convert(env)
    assert converted.python == ""
    expected = ["numpy>=1.14.3", "pandas>=1.0.0", "scikit-learn>0.19.1", "mlflow"]
    assert converted.dependencies == expected
    assert converted.build_dependencies == ["pip"]
    assert any("channels (defaults) are ignored" in note for note in converted.notes)


def test_renames_channel_prefixes_and_build_tools(tmp_path):
    env = conda_env(
        tmp_path,
        "dependencies: [python=3.11.4, conda-forge::pytorch=2.1, py-xgboost>=2, "
        "setuptools=68, wheel, typing_extensions]\n",
    )
    converted = convert(env)
    assert converted.python == "3.11"
    assert converted.dependencies == ["torch==2.1.*", "typing-extensions", "xgboost>=2"]
    assert converted.build_dependencies == ["setuptools==68.*", "wheel"]


def test_conda_only_packages_are_refused_together_with_the_fix(tmp_path):
    env = conda_env(
        tmp_path, "dependencies: [python=3.11, numpy, cudatoolkit=11.8, libgomp, mkl, 'x|']\n"
    )
    with pytest.raises(StepError) as raised:
        convert(env)
    text = str(raised.value)
    assert "cudatoolkit, libgomp, mkl exist only on conda channels" in text
    assert "env_manager=conda" in text and 'system_packages="libgomp1"' in text


def test_inspect_shows_the_conversion_and_the_python_choice(tmp_path, capsys):
    (tmp_path / "MLproject").write_text(MAIN)
    (tmp_path / "conda.yaml").write_text("channels: [defaults]\ndependencies: [numpy=1.26]\n")
    assert main(["inspect", str(tmp_path), "--env-manager", "uv"]) == 0
    out = capsys.readouterr().out
    assert "base image:   python:3.11" in out and "env manager:  uv" in out
    assert "names no Python version: using Python 3.11 (the python_version input)" in out
    assert "channels (defaults) are ignored" in out


def test_conda_only_packages_fail_inspect_and_build(tmp_path, capsys):
    (tmp_path / "MLproject").write_text(MAIN)
    (tmp_path / "conda.yaml").write_text("dependencies: [python=3.11, cudnn]\n")
    out = tmp_path / "out"
    for argv in (["inspect"], ["build", "--registry", "127.0.0.1:9", "--output", str(out)]):
        assert main([*argv, str(tmp_path), "--env-manager", "uv"]) == 1
        assert "cudnn exist only on conda channels" in capsys.readouterr().err
    assert not out.exists()


def test_env_manager_decides_the_base_the_recipe_and_the_tag(tmp_path):
    (tmp_path / "MLproject").write_text(MAIN)
    (tmp_path / "conda.yaml").write_text("dependencies: [python=3.10, numpy=1.26, pip: [six]]\n")
    conda = plan(tmp_path, BuildOptions())
    uv = plan(tmp_path, BuildOptions(env_manager="uv"))
    assert conda.recipe and uv.recipe
    assert conda.recipe.base_image.startswith("continuumio/miniconda3:")
    assert uv.recipe.base_image == "python:3.10"
    assert (
        uv.recipe.files["mlflow-steps/requirements.txt"] == b"numpy==1.26.*\nsix\nmlflow-skinny\n"
    )
    assert conda.tag != uv.tag
    assert plan(tmp_path, BuildOptions(env_manager="uv", base_image="my/base:1")).tag != uv.tag

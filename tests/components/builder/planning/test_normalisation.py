"""The tag hashes the normal form: equal pairs keep the tag, unequal pairs change it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from mlflow_steps.components.builder.backends.recipe import render
from mlflow_steps.components.builder.oci.registry import PinnedBase
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.builder.planning.tag import environment_tag
from mlflow_steps.components.builder.reading.codeset import load_codeset

MLPROJECT = "name: t\nentry_points:\n  main:\n    command: python train.py\n"


def tag_of(tmp_path: Path, name: str, text: str, options: BuildOptions | None = None) -> str:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    (root / "MLproject").write_text(MLPROJECT)
    (root / name).write_text(text)
    env = load_codeset(root).environment
    options = options or BuildOptions()
    return tag_for(env, options)


def tag_for(env, options: BuildOptions) -> str:
    install = env.install_plan(options)
    return environment_tag(install, render(install).dockerfile, options.index().public())


REQ_EQUAL = [
    ("comments", "numpy==1.26.4\npandas\n", "# deps\nnumpy==1.26.4  # pinned\n\npandas\n"),
    ("blank lines and whitespace", "numpy==1.26.4\npandas\n", "\n  numpy == 1.26.4  \n\n pandas\n"),
    ("line order", "numpy==1.26.4\npandas\n", "pandas\nnumpy==1.26.4\n"),
    ("name case and separators", "scikit-learn\n", "Scikit_Learn\n"),
    ("specifier order", "numpy>=1.0,<2\n", "numpy<2, >=1.0\n"),
    ("extras order", "mlflow[extras,gateway]\n", "mlflow[gateway,extras]\n"),
    ("continuation", "numpy==1.26.4\n", "numpy\\\n==1.26.4\n"),
    ("duplicates", "numpy\n", "numpy\nnumpy\n"),
    ("option spelling", "--index-url http://i/simple\nsix\n", "--index-url=http://i/simple\nsix\n"),
]
REQ_UNEQUAL = [
    ("version", "numpy==1.26.4\n", "numpy==1.26.3\n"),
    ("package added", "numpy\n", "numpy\npandas\n"),
    ("package swapped", "numpy\n", "scipy\n"),
    ("extra added", "mlflow\n", "mlflow[extras]\n"),
    ("marker", "numpy\n", "numpy; python_version < '3.12'\n"),
    ("index option", "six\n", "--index-url http://other/simple\nsix\n"),
]


@pytest.mark.parametrize(("case", "a", "b"), REQ_EQUAL, ids=[c[0] for c in REQ_EQUAL])
def test_requirements_equal_pairs_share_a_tag(tmp_path, case, a, b):
    assert tag_of(tmp_path, "requirements.txt", a) == tag_of(tmp_path, "requirements.txt", b)


@pytest.mark.parametrize(("case", "a", "b"), REQ_UNEQUAL, ids=[c[0] for c in REQ_UNEQUAL])
def test_requirements_unequal_pairs_differ(tmp_path, case, a, b):
    assert tag_of(tmp_path, "requirements.txt", a) != tag_of(tmp_path, "requirements.txt", b)


CONDA = "name: {name}\nchannels:\n{channels}dependencies:\n{deps}"
CONDA_BASE = CONDA.format(
    name="env",
    channels="  - conda-forge\n",
    deps="  - python=3.10\n  - numpy >=1.2\n  - pip\n  - pip:\n    - mlflow==2.9.2\n    - six\n",
)
CONDA_EQUAL = [
    ("env name", CONDA_BASE.replace("name: env", "name: other")),
    ("comments", "# my env\n" + CONDA_BASE.replace("  - pip\n", "  - pip  # the installer\n")),
    (
        "dependency order",
        CONDA.format(
            name="env",
            channels="  - conda-forge\n",
            deps="  - numpy>=1.2\n  - pip\n  - python=3.10\n"
            "  - pip:\n    - six\n    - mlflow==2.9.2\n",
        ),
    ),
    (
        "flow style",
        "name: env\nchannels: [conda-forge]\ndependencies: [python=3.10, numpy >= 1.2,"
        " pip, {pip: [mlflow == 2.9.2, six]}]\n",
    ),
]
CONDA_UNEQUAL = [
    ("python", CONDA_BASE.replace("python=3.10", "python=3.11")),
    ("channel", CONDA_BASE.replace("conda-forge", "defaults")),
    ("channel added", CONDA_BASE.replace("  - conda-forge\n", "  - conda-forge\n  - defaults\n")),
    ("pip version", CONDA_BASE.replace("mlflow==2.9.2", "mlflow==2.9.1")),
    ("conda package", CONDA_BASE.replace("numpy >=1.2", "numpy >=1.3")),
]


@pytest.mark.parametrize(("case", "other"), CONDA_EQUAL, ids=[c[0] for c in CONDA_EQUAL])
def test_conda_equal_pairs_share_a_tag(tmp_path, case, other):
    assert tag_of(tmp_path, "conda.yaml", CONDA_BASE) == tag_of(tmp_path, "conda.yaml", other)


@pytest.mark.parametrize(("case", "other"), CONDA_UNEQUAL, ids=[c[0] for c in CONDA_UNEQUAL])
def test_conda_unequal_pairs_differ(tmp_path, case, other):
    assert tag_of(tmp_path, "conda.yaml", CONDA_BASE) != tag_of(tmp_path, "conda.yaml", other)


def test_python_env_version_and_dependencies_change_the_tag(tmp_path):
    base = 'python: "3.10"\nbuild_dependencies: [pip]\ndependencies: [six==1.16.0, numpy]\n'
    same = (
        '# env\npython: "3.10"\nbuild_dependencies:\n  - pip\ndependencies:\n  - numpy\n'
        "  - six == 1.16.0\n"
    )
    assert tag_of(tmp_path, "python_env.yaml", base) == tag_of(tmp_path, "python_env.yaml", same)
    for other in (base.replace("3.10", "3.11"), base.replace("1.16.0", "1.17.0")):
        assert tag_of(tmp_path, "python_env.yaml", base) != tag_of(
            tmp_path, "python_env.yaml", other
        )


def test_included_requirements_file_is_part_of_the_tag(tmp_path):
    root = tmp_path / "inc"
    root.mkdir()
    (root / "MLproject").write_text(MLPROJECT)
    (root / "requirements.txt").write_text("-r base.txt\npandas\n")
    (root / "base.txt").write_text("numpy==1.26.4\n")
    env = load_codeset(root).environment
    first = tag_for(env, BuildOptions())
    assert "numpy==1.26.4" in env.canonical()["requirements"]
    (root / "base.txt").write_text("numpy==1.26.3\n")
    env = load_codeset(root).environment
    assert tag_for(env, BuildOptions()) != first


def test_index_credentials_never_change_the_tag(tmp_path, monkeypatch):
    """Rotating a token keeps every tag: only the URL without user information is hashed."""
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    text = "six\n"
    plain = tag_of(tmp_path, "requirements.txt", text, BuildOptions(pip_index_url="http://i/s/"))
    for url in ("http://alice:one@i/s/", "http://bob:two@i/s/"):
        options = BuildOptions(pip_index_url=url)
        assert tag_of(tmp_path, "requirements.txt", text, options) == plain
    monkeypatch.setenv("MLFLOW_STEPS_INDEX_NETRC", "machine i login carol password three")
    assert tag_of(
        tmp_path, "requirements.txt", text, BuildOptions(pip_index_url="http://i/s/")
    ) == (plain)


def test_the_base_digest_is_part_of_the_tag(tmp_path):
    root = tmp_path / "base"
    root.mkdir()
    (root / "MLproject").write_text(MLPROJECT)
    (root / "requirements.txt").write_text("six\n")
    install = load_codeset(root).environment.install_plan(BuildOptions())
    tags = set()
    for digest in ("sha256:" + "1" * 64, "sha256:" + "2" * 64):
        base = PinnedBase("python:3.6.13", digest, f"docker.io/library/python@{digest}")
        tags.add(environment_tag(install, render(install, base).dockerfile, {}, digest))
    assert len(tags) == 2


def test_build_inputs_change_the_tag_but_registry_names_do_not(tmp_path):
    text = "six\n"
    plain = tag_of(tmp_path, "requirements.txt", text)
    assert tag_of(tmp_path, "requirements.txt", text, BuildOptions(base_image="debian:12")) != plain
    assert (
        tag_of(tmp_path, "requirements.txt", text, BuildOptions(pip_index_url="http://i/simple"))
        != plain
    )
    assert (
        tag_of(tmp_path, "requirements.txt", text, BuildOptions(mlflow_requirement="mlflow"))
        != plain
    )
    assert (
        tag_of(
            tmp_path, "requirements.txt", text, BuildOptions(registry="r.example", repository="x/y")
        )
        == plain
    )


def test_tag_is_deterministic_across_processes_and_pythons(tmp_path):
    """Same tag from a fresh interpreter with a different hash seed (no dict/set order leaks)."""
    import os
    import subprocess
    import sys

    root = tmp_path / "det"
    root.mkdir()
    (root / "MLproject").write_text(MLPROJECT)
    (root / "requirements.txt").write_text("pandas\nnumpy>=1,<2\nsix\n")
    code = (
        "from mlflow_steps.components.builder import build; "
        "from mlflow_steps.components.builder.planning.options import BuildOptions; "
        f"print(build.plan({str(root)!r}, BuildOptions()).tag)"
    )
    tags = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert len(tags) == 1 and len(tags.pop()) == 24

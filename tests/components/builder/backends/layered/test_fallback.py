"""When per-package layering does not apply, known before anything runs: the reason, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_steps.components.builder import build
from mlflow_steps.components.builder.backends.layered.assemble import Fallback, requirement_lines
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.builder.planning.plan import STAGING, InstallPlan, RequirementSet

SKLEARN = Path(__file__).resolve().parents[5] / "examples" / "sklearn-pip"


def venv(*lines: str, **changes) -> InstallPlan:
    sets = (RequirementSet("requirements.txt", lines),)
    return InstallPlan("pip", "venv", "python:3.11", requirement_sets=sets, **changes)


@pytest.mark.parametrize(
    "install, options, reason",
    [
        (venv("six"), BuildOptions(engine="buildah"), ""),
        (venv("six"), BuildOptions(engine="buildah", layering="single"), ""),
        (venv("six", system_packages=("libgomp1",)), BuildOptions(engine="buildah"),
         "system_packages"),
        (InstallPlan("conda", "conda", "continuumio/miniconda3:4.10.3"),
         BuildOptions(engine="buildah"), "env_manager=conda"),
        (venv("six"), BuildOptions(engine="kaniko"), "the kaniko engine builds a Dockerfile"),
        (venv("six"), BuildOptions(engine="docker"), "the docker engine"),
    ],
)  # fmt: skip
def test_static_reasons(install, options, reason):
    found = build.single_layer_reason(install, options)
    assert (reason in found) if reason else found == ""


def test_layering_is_not_part_of_the_tag():
    """Both layerings hold the same files and config: the tag names the environment, and an
    image already pushed either way is a cache hit, whatever the engine."""
    layered = build.plan(SKLEARN, BuildOptions(engine="buildah")).tag
    single = build.plan(SKLEARN, BuildOptions(engine="buildah", layering="single")).tag
    kaniko = build.plan(SKLEARN, BuildOptions(engine="kaniko")).tag
    assert layered == single == kaniko


def test_requirement_sets_in_order_with_their_options():
    install = build.plan(SKLEARN, BuildOptions(engine="buildah")).install
    assert requirement_lines(install) == (
        [],
        [],
        ["pandas>=2", "scikit-learn>=1.3", "mlflow-skinny"],
    )
    options, constraints, lines = requirement_lines(venv(
        "--extra-index-url http://x/simple", "--require-hashes", "six==1.17.0 --hash=sha256:ab"
    ))  # fmt: skip
    assert options == ["--extra-index-url http://x/simple"] and constraints == []
    assert lines == ["six==1.17.0 --hash=sha256:ab"]


def test_a_shipped_constraints_file_takes_part_in_the_resolution_only():
    shipped = {f"{STAGING}/constraints.txt": b"six==1.16.0\n"}
    options, constraints, lines = requirement_lines(
        venv("-c constraints.txt", "six", files=shipped)
    )
    assert (options, constraints, lines) == ([], ["-c constraints.txt"], ["six"])


@pytest.mark.parametrize(
    "line, why",
    [
        ("-c constraints.txt", "reads another file"),  # not shipped with the plan
        ("-e ./codeset/vendor/pkg", "reads another file"),
        ("tinypkg @ https://example.org/tinypkg-1.0.tar.gz", "not from the index"),
        ("./codeset/vendor/pkg", "not a requirement from the index"),
        # pip and uv read the file's own index, the per-package install the builder's
        ("--index-url http://i/simple", "name their own index"),
        ("--no-index", "name their own index"),
    ],
)
def test_what_the_index_does_not_serve_is_one_layer(line, why):
    with pytest.raises(Fallback, match=why):
        requirement_lines(venv("six", line))

"""When per-package layering does not apply, known before anything runs: the reason, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_steps.components.builder import build
from mlflow_steps.components.builder.environments import CondaEnv, PipEnv
from mlflow_steps.components.builder.options import BuildOptions

SKLEARN = Path(__file__).resolve().parents[4] / "examples" / "sklearn-pip"
PIP = PipEnv(lines=["six"])
CONDA = CondaEnv(dependencies=["python=3.11"])


@pytest.mark.parametrize(
    "env, options, reason",
    [
        (PIP, BuildOptions(engine="buildah"), ""),
        (PIP, BuildOptions(engine="buildah", layering="single"), ""),
        (PIP, BuildOptions(engine="buildah", system_packages="libgomp1"), "system_packages"),
        (CONDA, BuildOptions(engine="buildah", env_manager="conda"), "env_manager=conda"),
        (CONDA, BuildOptions(engine="buildah", env_manager="uv"), ""),
        (PIP, BuildOptions(engine="kaniko"), "the kaniko engine builds a Dockerfile"),
        (PIP, BuildOptions(engine="docker"), "the docker engine"),
    ],
)
def test_static_reasons(env, options, reason):
    found = build.single_layer_reason(env, options)
    assert (reason in found) if reason else found == ""


def test_layering_is_not_part_of_the_tag():
    """Both layerings hold the same files and config: the tag names the environment, and an
    image already pushed either way is a cache hit, whatever the engine."""
    layered = build.plan(SKLEARN, BuildOptions(engine="buildah")).tag
    single = build.plan(SKLEARN, BuildOptions(engine="buildah", layering="single")).tag
    kaniko = build.plan(SKLEARN, BuildOptions(engine="kaniko")).tag
    assert layered == single == kaniko


def test_layered_input_holds_every_requirement_set_in_order():
    the_plan = build.plan(SKLEARN, BuildOptions(engine="buildah"))
    job = build.layered_build(the_plan, BuildOptions(engine="buildah"))
    assert job.requirements == ["pandas>=2", "scikit-learn>=1.3", "mlflow-skinny"]  # normalised
    assert job.direct_names == {"scikit-learn", "pandas", "mlflow-skinny"}
    assert job.kind == "pip" and job.compile_bytecode

"""`mlflow-steps images`, host side: the wheel of the installed package, the build contexts,
the argument checks and the output file. (The buildah variant is built and run for real by the
e2e tier: tests/generators/test_run_generated_e2e.py.)"""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from mlflow_steps import __version__
from mlflow_steps.components.builder.images import publish
from mlflow_steps.components.builder.images.wheel import build_wheel
from mlflow_steps.components.problems import StepError


def test_the_wheel_holds_the_package_and_installs_with_pip(tmp_path):
    wheel = build_wheel(tmp_path / "w")
    names = zipfile.ZipFile(wheel).namelist()
    assert wheel.name == f"mlflow_steps-{__version__}-py3-none-any.whl"
    for expected in (
        "mlflow_steps/cli.py",
        "mlflow_steps/components/builder/backends/recipe_files/install-python-env.sh",
        "mlflow_steps/components/builder/images/Dockerfile.buildah",
        "mlflow_steps/components/runtime/cli.py",
        "mlflow_steps/generators/tekton.py",
        f"mlflow_steps-{__version__}.dist-info/entry_points.txt",
    ):
        assert expected in names
    assert not [n for n in names if "__pycache__" in n or "/catalog/" in n]
    assert build_wheel(tmp_path / "again").read_bytes() == wheel.read_bytes()  # deterministic
    target = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), wheel],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (target / "mlflow_steps" / "components" / "builder" / "step.py").exists()


def test_references_build_arguments_and_the_index_secret():
    request = publish.ImagesRequest(
        registry="reg.example:5000",
        tag="1.2.3",
        base_image="debian:12",
        pip_index_url="http://u:tok@i/simple/",
    )
    assert (
        request.reference("buildah") == "reg.example:5000/mlflow-steps/mlflow-builder-buildah:1.2.3"
    )
    # The unprivileged builder is the default one: mlflow-builder, the name generated YAML uses.
    assert request.reference("unprivileged") == "reg.example:5000/mlflow-steps/mlflow-builder:1.2.3"
    assert request.build_args("unprivileged") == {"BASE": "debian:12"}
    # Index settings are never build arguments (the history would keep them): a build secret.
    assert request.build_args("buildah") == {"BASE": "debian:12"}
    assert request.index().public() == {"PIP_INDEX_URL": "http://i/simple/"}
    assert request.index().install_env() == {"PIP_INDEX_URL": "http://u:tok@i/simple/"}
    assert request.build_args("kaniko")["KANIKO"] == publish.DEFAULT_KANIKO
    assert "osscontainertools/kaniko" in publish.DEFAULT_KANIKO
    assert b"ARG KANIKO=" + publish.DEFAULT_KANIKO.encode() in publish.dockerfile("kaniko")
    for variant in publish.VARIANTS:
        text = publish.dockerfile(variant).decode()
        assert "ARG PIP_" not in text and "COPY wheels/" in text
        assert "RUN --mount=type=secret,id=mlflow-steps-index" in text


def test_bad_variant_or_engine_is_refused_before_anything_is_built(tmp_path):
    with pytest.raises(StepError, match="--variant: podman unknown"):
        publish.build_images(publish.ImagesRequest("r", variants=("podman",)), print)
    with pytest.raises(StepError, match="--engine kaniko"):
        publish.build_images(publish.ImagesRequest("r", engine="kaniko"), print)


def test_output_lines_are_written_whole(tmp_path):
    out = tmp_path / "sub" / "images.txt"
    publish.write_output({"buildah": "r/p/mlflow-builder-buildah:1@sha256:ab"}, out)
    assert out.read_text() == "buildah r/p/mlflow-builder-buildah:1@sha256:ab\n"
    assert [p.name for p in out.parent.iterdir()] == ["images.txt"]  # no partial file left

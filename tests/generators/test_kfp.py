"""KFP: components from the step specs; the example pipeline compiles with kfp's compiler and
the trainer's image is the builder's output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from mlflow_steps.components.steps import (
    BASE_PULL_CONFIG,
    BUILDER,
    INDEX_INPUTS,
    REGISTRY_CONFIG,
    RUNTIME,
)
from mlflow_steps.generators.catalog import GenerateOptions, kfp_files
from mlflow_steps.generators.kfp import component_texts

ROOT = Path(__file__).resolve().parents[2]


def test_components_expose_every_spec_input():
    texts = component_texts()
    assert list(texts) == [
        "mlflow_builder",
        "mlflow_builder_buildah",
        "mlflow_builder_kaniko",
        "mlflow_builder_kaniko_download",
        "mlflow_builder_kaniko_push",
        "mlflow_runtime",
    ]
    for name, text in texts.items():
        spec = RUNTIME if name == "mlflow_runtime" else BUILDER
        component = yaml.safe_load(text)
        names = {i["name"] for i in component["inputs"]}
        expected = {"codeset"} | {i.name for i in spec.inputs if i.name != "engine"}
        outputs = [o.name for o, _ in spec.string_outputs()]
        if name == "mlflow_builder_kaniko":  # the install container: no index input
            expected = (expected - set(INDEX_INPUTS)) | {"downloads"}
            outputs = ["layout"]  # the image as an OCI image layout, for the push container
        if name == "mlflow_builder_kaniko_push":  # pushes the layout: the builder's outputs
            expected = (expected - set(INDEX_INPUTS)) | {"downloads", "layout"}
        if name == "mlflow_builder_kaniko_download":  # its only output: the downloads
            outputs = ["downloads"]
        assert names == expected
        assert [o["name"] for o in component["outputs"]] == outputs
    builder = yaml.safe_load(texts["mlflow_builder"])
    assert [o["name"] for o in builder["outputs"]] == [
        "image",
        "digest",
        "source_uri",
        "source_digest",
    ]


def test_kaniko_pipeline_hands_the_index_secret_to_the_download_task_only():
    """Issue 23: Kaniko's build task (RUNs not isolated from its container) gets no index
    Secret, no index setting and no registry Secret; the download task gets the index Secret
    and passes `downloads`; the push task gets the registry Secret, pushes the build task's
    `layout` and gives the image the trainer runs."""
    pipeline, platform = yaml.safe_load_all(
        kfp_files(GenerateOptions(build_engine="kaniko"))["mlflow-build-and-train.yaml"]
    )
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert "secretAsEnv" in executors["exec-mlflow-builder-kaniko-download"]
    assert "secretAsEnv" not in executors.get("exec-mlflow-builder-kaniko", {})
    assert "secretAsEnv" not in executors["exec-mlflow-builder-kaniko-push"]

    def mounted(executor: str) -> list[tuple[str, str]]:
        return [
            (v["secretNameParameter"]["componentInputParameter"], v["mountPath"])
            for v in executors[executor].get("secretAsVolume", [])
        ]

    registry = ("registry_secret", REGISTRY_CONFIG)
    assert mounted("exec-mlflow-builder-kaniko-download") == [registry]
    assert mounted("exec-mlflow-builder-kaniko-push") == [registry]
    assert mounted("exec-mlflow-builder-kaniko") == [("base_pull_secret", BASE_PULL_CONFIG)]
    tasks = pipeline["root"]["dag"]["tasks"]
    build = tasks["mlflow-builder-kaniko"]
    assert build["inputs"]["artifacts"]["downloads"]["taskOutputArtifact"] == {
        "outputArtifactKey": "downloads",
        "producerTask": "mlflow-builder-kaniko-download",
    }
    push = tasks["mlflow-builder-kaniko-push"]["inputs"]["artifacts"]
    assert push["layout"]["taskOutputArtifact"] == {
        "outputArtifactKey": "layout",
        "producerTask": "mlflow-builder-kaniko",
    }
    containers = {
        name: pipeline["deploymentSpec"]["executors"][f"exec-{name}"]["container"]
        for name in ("mlflow-builder-kaniko", "mlflow-builder-kaniko-push", "mlflow-runtime")
    }
    install, pushing = containers["mlflow-builder-kaniko"], containers["mlflow-builder-kaniko-push"]
    assert "--pip-index-url" not in install["args"] and "--output" not in install["args"]
    assert install["args"][-6:-1] == [
        "--phase",
        "install",
        "--downloads",
        install["args"][-3],
        "--layout",
    ]
    assert install["env"] == [{"name": "DOCKER_CONFIG", "value": BASE_PULL_CONFIG}]
    assert {"name": "DOCKER_CONFIG", "value": REGISTRY_CONFIG} in pushing["env"]
    assert "--pip-index-url" not in pushing["args"] and "--output" in pushing["args"]
    assert pushing["args"][-6:-4] == ["--phase", "push"]
    # The trainer runs the image the push task gives.
    runtime = tasks["mlflow-runtime"]
    assert runtime["inputs"]["parameters"]["image_digest"]["taskOutputParameter"] == {
        "outputParameterKey": "digest",
        "producerTask": "mlflow-builder-kaniko-push",
    }
    assert "mlflow-builder-kaniko-push" in containers["mlflow-runtime"]["image"]


def test_pipeline_runs_both_tasks_non_root_with_resources_as_parameters():
    pipeline, platform = yaml.safe_load_all(
        kfp_files(GenerateOptions())["mlflow-build-and-train.yaml"]
    )
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name in ("exec-mlflow-builder", "exec-mlflow-runtime"):
        context = executors[name]["securityContext"]
        assert context["runAsNonRoot"] is True and int(context["runAsUser"]) == 65532
    parameters = pipeline["root"]["inputDefinitions"]["parameters"]
    assert parameters["builder_memory_limit"]["defaultValue"] == BUILDER.resources.memory_limit
    assert parameters["trainer_cpu_request"]["defaultValue"] == RUNTIME.resources.cpu_request
    resources = pipeline["deploymentSpec"]["executors"]["exec-mlflow-builder"]["container"][
        "resources"
    ]
    assert "pipelinechannel--builder_memory_limit" in resources["resourceMemoryLimit"]


def test_example_pipeline_compiles_and_chains_the_image(tmp_path):
    target = tmp_path / "pipeline.yaml"
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "kfp_pipeline.py"), str(target)],
        check=True,
        capture_output=True,
    )
    # The pipeline, then its Kubernetes platform spec (kfp-kubernetes: the index Secret).
    pipeline, _platform = yaml.safe_load_all(target.read_text())
    executors = pipeline["deploymentSpec"]["executors"]
    assert executors["exec-mlflow-builder"]["container"]["image"].startswith(
        "ghcr.io/mlflow-steps/mlflow-builder:"
    )
    runtime_image = executors["exec-mlflow-runtime"]["container"]["image"]
    assert "pipelinechannel--mlflow-builder-image" in runtime_image
    train = pipeline["root"]["dag"]["tasks"]["mlflow-runtime"]
    channel = train["inputs"]["parameters"]["pipelinechannel--mlflow-builder-image"]
    assert channel["taskOutputParameter"] == {
        "outputParameterKey": "image",
        "producerTask": "mlflow-builder",
    }

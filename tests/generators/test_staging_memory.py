"""The engine-less builder's pods mount a memory-backed emptyDir at /dev/shm (components/steps.py
SHM), where it stages the tree it installs when there is room; the engine variants do not."""

from __future__ import annotations

import yaml

from mlflow_steps.components.steps import SHM, SHM_VOLUME
from mlflow_steps.generators import argo, tekton
from mlflow_steps.generators.catalog import GenerateOptions, kfp_files

MEMORY = {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory"}}


def memory_mounts(volumes: list[dict], mounts: list[dict]) -> list[str]:
    """Mount paths of memory-backed emptyDir volumes among `mounts`."""
    memory = {v["name"] for v in volumes if v.get("emptyDir", {}).get("medium") == "Memory"}
    return [m["mountPath"] for m in mounts if m["name"] in memory]


def test_tekton_builder_tasks():
    out = tekton.files(tekton.TektonOptions())
    found = {}
    for task in out.values():
        if isinstance(task, dict) and task.get("kind") == "Task":
            spec = task["spec"]
            mounts = [m for s in spec["steps"] for m in s.get("volumeMounts", [])]
            found[task["metadata"]["name"]] = memory_mounts(spec.get("volumes", []), mounts)
    assert found["mlflow-builder"] == [SHM]
    assert found["mlflow-builder-buildah"] == found["mlflow-builder-kaniko"] == []
    assert found["mlflow-runtime"] == []


def test_argo_and_hera_builder_templates():
    from hera.workflows import Workflow

    from mlflow_steps.pipelines.hera import mlflow_builder

    hera = Workflow(name="hera", templates=[mlflow_builder]).to_dict()
    for spec in (argo.files()["mlflow-steps-workflow-template.yaml"]["spec"], hera["spec"]):
        found = {}
        for tpl in spec["templates"]:
            containers = [tpl["container"]] if "container" in tpl else []
            containers += tpl.get("containerSet", {}).get("containers", [])
            mounts = [m for c in containers for m in c.get("volumeMounts", [])]
            found[tpl["name"]] = memory_mounts(tpl.get("volumes", []), mounts)
        assert found["mlflow-builder"] == [SHM]
        assert all(paths == [] for name, paths in found.items() if name != "mlflow-builder")


def test_kfp_builder_task():
    _pipeline, platform = yaml.safe_load_all(
        kfp_files(GenerateOptions())["mlflow-build-and-train.yaml"]
    )
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-mlflow-builder"]["emptyDirMounts"] == [
        {"medium": "Memory", "mountPath": SHM, "volumeName": SHM_VOLUME}
    ]
    assert "emptyDirMounts" not in executors["exec-mlflow-runtime"]
    buildah = kfp_files(GenerateOptions(build_engine="buildah"))["mlflow-build-and-train.yaml"]
    assert "emptyDirMounts" not in buildah

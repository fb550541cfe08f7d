"""Generated Tekton objects: valid against the Tekton v1 CRD schemas (unknown fields rejected),
every $(params|results|workspaces|tasks) reference resolving, catalog conventions kept."""

from __future__ import annotations

import re

import jsonschema
import pytest

from mlflow_steps.components.steps import BUILDER, RUNTIME
from mlflow_steps.generators.tekton import TektonOptions, files
from tests.support.schemas import tekton_schema

REFERENCE = re.compile(r"\$\(([^)]+)\)")


def documents(options: TektonOptions) -> dict[str, dict]:
    return {path: obj for path, obj in files(options).items() if path.endswith(".yaml")}


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@pytest.mark.parametrize("engine", ["none", "kaniko", "buildah"])
def test_every_object_is_valid_against_the_v1_crd_schema(engine):
    for path, obj in documents(TektonOptions(build_engine=engine)).items():
        assert obj["apiVersion"] == "tekton.dev/v1", path
        jsonschema.validate(obj, tekton_schema(obj["kind"]))


def test_schema_check_rejects_unknown_fields():
    task = files(TektonOptions())["task/mlflow-builder/0.1/mlflow-builder.yaml"]
    bad = {**task, "spec": {**task["spec"], "stepz": []}}
    with pytest.raises(jsonschema.ValidationError, match="stepz"):
        jsonschema.validate(bad, tekton_schema("Task"))


def check_task_references(task: dict) -> None:
    spec = task["spec"]
    params = {p["name"] for p in spec["params"]}
    results = {r["name"] for r in spec["results"]}
    workspaces = {w["name"] for w in spec["workspaces"]}
    for text in strings(spec["steps"]):
        for ref in REFERENCE.findall(text):
            kind, name, *rest = ref.split(".")
            known = {"params": params, "results": results, "workspaces": workspaces}[kind]
            assert name in known, f"$({ref}) in {task['metadata']['name']}"
            if kind in ("results", "workspaces"):
                assert rest in (["path"], ["bound"]), ref


def test_task_references_resolve():
    for obj in documents(TektonOptions()).values():
        if obj["kind"] == "Task":
            check_task_references(obj)


def test_pipeline_references_resolve_against_the_tasks_it_calls():
    docs = documents(TektonOptions())
    tasks = {o["metadata"]["name"]: o for o in docs.values() if o["kind"] == "Task"}
    pipeline = next(o for o in docs.values() if o["kind"] == "Pipeline")
    spec = pipeline["spec"]
    params = {p["name"] for p in spec["params"]}
    workspaces = {w["name"] for w in spec["workspaces"]}
    pipeline_tasks = {t["name"]: t for t in spec["tasks"]}
    for text in strings(spec):
        for ref in REFERENCE.findall(text):
            kind, name, *rest = ref.split(".")
            if kind == "params":
                assert name in params, ref
            else:
                assert kind == "tasks" and rest[0] == "results", ref
                called = pipeline_tasks[name]["taskRef"]["name"]
                assert rest[1] in {r["name"] for r in tasks[called]["spec"]["results"]}, ref
    for task in spec["tasks"]:
        for ws in task.get("workspaces", []):
            assert ws["workspace"] in workspaces
        ref = task["taskRef"]
        if "name" in ref:  # our own Tasks: every param passed exists, every required one passed
            declared = {p["name"]: p for p in tasks[ref["name"]]["spec"]["params"]}
            passed = {p["name"] for p in task["params"]}
            assert passed <= set(declared), passed - set(declared)
            assert {n for n, p in declared.items() if "default" not in p} <= passed


def test_catalog_conventions():
    generated = files(TektonOptions(build_engine="buildah"))
    builder = generated["task/mlflow-builder-buildah/0.1/mlflow-builder-buildah.yaml"]
    assert builder["metadata"]["name"] == "mlflow-builder-buildah"
    assert builder["metadata"]["labels"]["app.kubernetes.io/version"] == "0.1"
    annotations = builder["metadata"]["annotations"]
    for key in ("pipelines.minVersion", "categories", "tags", "displayName", "platforms"):
        assert f"tekton.dev/{key}" in annotations
    # Tekton Chains' type hints: the image (subject) and the codeset's source (an input).
    results = {r["name"]: r for r in builder["spec"]["results"]}
    assert set(results) == {"IMAGE_URL", "IMAGE_DIGEST", "SOURCE_ARTIFACT_INPUTS"}
    assert results["SOURCE_ARTIFACT_INPUTS"]["type"] == "object"
    assert set(results["SOURCE_ARTIFACT_INPUTS"]["properties"]) == {"uri", "digest"}
    assert builder["spec"]["workspaces"][1] == {
        "name": "dockerconfig",
        "description": "A docker config.json with registry credentials.",
        "optional": True,
    }
    (step,) = builder["spec"]["steps"]
    assert step["securityContext"] == {"privileged": True} and "script" not in step
    assert "mlflow-builder-buildah" in step["image"]
    # buildah's store (overlay driver) on an emptyDir, as the catalog's own buildah Task has it.
    assert step["volumeMounts"] == [
        {"name": "varlibcontainers", "mountPath": "/var/lib/containers"}
    ]
    assert builder["spec"]["volumes"] == [{"name": "varlibcontainers", "emptyDir": {}}]
    # The storage driver is a param (overlay, as the catalog's buildah Task; vfs where overlay
    # cannot mount), reaching buildah as its own STORAGE_DRIVER.
    driver = next(p for p in builder["spec"]["params"] if p["name"] == "STORAGE_DRIVER")
    assert driver["default"] == "overlay"
    assert {"name": "STORAGE_DRIVER", "value": "$(params.STORAGE_DRIVER)"} in step["env"]
    for name in ("mlflow-builder", "mlflow-builder-kaniko"):
        other = generated[f"task/{name}/0.1/{name}.yaml"]
        assert "STORAGE_DRIVER" not in {p["name"] for p in other["spec"]["params"]}
        volumes = [v["name"] for v in other["spec"].get("volumes", [])]
        split = [
            "mlflow-steps-downloads",
            "mlflow-steps-job",
            "registry-secret",
            "base-pull-secret",
        ]
        assert volumes == (split if name.endswith("kaniko") else ["dshm"])  # staging in memory
        assert "varlibcontainers" not in str(other["spec"]["steps"])
    kaniko = generated["task/mlflow-builder-kaniko/0.1/mlflow-builder-kaniko.yaml"]
    assert kaniko["spec"]["steps"][0]["securityContext"] == {"runAsUser": 0}
    # The Pipeline calls the variant asked for.
    pipeline = generated["pipeline/mlflow-build-and-train/0.1/mlflow-build-and-train.yaml"]
    build = next(t for t in pipeline["spec"]["tasks"] if t["name"] == "build")
    assert build["taskRef"] == {"name": "mlflow-builder-buildah"}
    assert not any("$(params." in arg for arg in step["args"] + step["command"])
    env = {e["name"]: e["value"] for e in step["env"] if "value" in e}
    for item in BUILDER.inputs:
        if item.name != "engine":
            assert env[item.env] == f"$(params.{item.name.upper()})"
    runtime = generated["task/mlflow-runtime/0.1/mlflow-runtime.yaml"]
    (run,) = runtime["spec"]["steps"]
    assert run["image"] == "$(params.IMAGE)"
    assert run["envFrom"] == [{"secretRef": {"name": "$(params.MLFLOW_SECRET)", "optional": True}}]
    assert not any(e["name"] in RUNTIME.secret_env for e in run["env"])  # never literals


def test_builder_image_is_configurable_and_can_be_pinned_by_digest():
    pinned = "registry.example/mlflow-builder@sha256:" + "0" * 64
    generated = files(TektonOptions(builder_image=pinned))
    task = generated["task/mlflow-builder/0.1/mlflow-builder.yaml"]
    assert task["spec"]["steps"][0]["image"] == pinned
    # Only the variant asked for takes the image; the others keep the project's.
    other = generated["task/mlflow-builder-kaniko/0.1/mlflow-builder-kaniko.yaml"]
    assert other["spec"]["steps"][0]["image"].startswith(
        "ghcr.io/mlflow-steps/mlflow-builder-kaniko:"
    )


def test_default_builder_is_unprivileged_and_passes_engine_none():
    generated = files(TektonOptions())
    task = generated["task/mlflow-builder/0.1/mlflow-builder.yaml"]
    (step,) = task["spec"]["steps"]
    assert step["image"].startswith("ghcr.io/mlflow-steps/mlflow-builder:")
    assert {"name": "FUSEML_ENGINE", "value": "none"} in step["env"]
    assert step["securityContext"]["runAsNonRoot"] is True
    assert step["computeResources"] == BUILDER.resources.kubernetes()
    # What a Task cannot set, its runs do: no token, the pod's non-root settings, resources.
    run = generated["pipeline/mlflow-build-and-train/0.1/samples/mlflow-build-and-train-run.yaml"]
    pod = run["spec"]["taskRunTemplate"]["podTemplate"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    specs = {s["pipelineTaskName"]: s for s in run["spec"]["taskRunSpecs"]}
    assert specs["train"]["computeResources"] == RUNTIME.resources.kubernetes()
    sample = generated["task/mlflow-builder/0.1/samples/mlflow-builder-run.yaml"]
    assert sample["spec"]["podTemplate"]["automountServiceAccountToken"] is False

"""Generated Argo objects (built with Hera): valid against argo-workflows' JSON schema with
unknown fields rejected; parameter references resolve; the Hera components compose."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from mlflow_steps.components.steps import BUILDER, RUNTIME
from mlflow_steps.generators.argo import files
from tests.support.schemas import argo_validator_schema

ROOT = Path(__file__).resolve().parents[2]
INPUT_REF = re.compile(r"\{\{inputs\.parameters\.([\w-]+)\}\}")


def validate(obj: dict) -> None:
    jsonschema.validate(obj, argo_validator_schema(obj["kind"]))


@pytest.mark.parametrize("engine", ["kaniko", "buildah"])
def test_generated_objects_are_valid(engine):
    for obj in files(build_engine=engine).values():
        validate(obj)


def test_buildah_builder_keeps_its_store_on_an_empty_dir():
    def builder(engine: str) -> dict:
        template = files(build_engine=engine)["mlflow-steps-workflow-template.yaml"]
        return next(t for t in template["spec"]["templates"] if t["name"] == BUILDER.name)

    buildah = builder("buildah")
    assert buildah["volumes"] == [{"name": "varlibcontainers", "emptyDir": {}}]
    assert buildah["container"]["volumeMounts"] == [
        {"name": "varlibcontainers", "mountPath": "/var/lib/containers"}
    ]
    assert buildah["container"]["securityContext"] == {"privileged": True}
    assert "volumes" not in builder("kaniko")
    parameters = {p["name"]: p for p in buildah["inputs"]["parameters"]}
    assert parameters["storage-driver"]["default"] == "overlay"
    assert {
        "name": "STORAGE_DRIVER",
        "value": "{{inputs.parameters.storage-driver}}",
    } in buildah["container"]["env"]
    kaniko_parameters = {p["name"] for p in builder("kaniko")["inputs"]["parameters"]}
    assert "storage-driver" not in kaniko_parameters


def test_schema_check_rejects_unknown_fields():
    obj = files()["mlflow-steps-workflow-template.yaml"]
    obj["spec"]["templates"][0]["containr"] = {}
    with pytest.raises(jsonschema.ValidationError, match="containr"):
        validate(obj)


def test_template_parameter_references_resolve():
    template = files()["mlflow-steps-cluster-workflow-template.yaml"]
    assert template["kind"] == "ClusterWorkflowTemplate"
    for tpl in template["spec"]["templates"]:
        declared = {p["name"] for p in tpl["inputs"]["parameters"]}
        used = set(INPUT_REF.findall(yaml.safe_dump(tpl)))
        assert used <= declared, used - declared
        assert tpl["inputs"]["artifacts"] == [{"name": "codeset", "path": "/project"}]


def test_example_workflow_chains_builder_output_into_runtime_image():
    generated = files()
    names = {
        t["name"]: t
        for t in generated["mlflow-steps-cluster-workflow-template.yaml"]["spec"]["templates"]
    }
    workflow = generated["examples/mlflow-build-and-train-workflow.yaml"]
    tasks = {t["name"]: t for t in workflow["spec"]["templates"][0]["dag"]["tasks"]}
    assert tasks["build"]["templateRef"] == {
        "name": "mlflow-steps",
        "template": BUILDER.name,
        "clusterScope": True,
    }
    assert tasks["train"]["templateRef"]["template"] == RUNTIME.name
    image = next(p for p in tasks["train"]["arguments"]["parameters"] if p["name"] == "image")
    assert image["value"] == "{{tasks.build.outputs.parameters.image}}"
    assert "image" in {p["name"] for p in names[BUILDER.name]["outputs"]["parameters"]}
    for task in tasks.values():  # every argument names an input of the referenced template
        declared = {
            p["name"] for p in names[task["templateRef"]["template"]]["inputs"]["parameters"]
        }
        assert {p["name"] for p in task["arguments"]["parameters"]} <= declared


def test_secrets_come_from_a_secret_never_literals():
    runtime = next(
        t
        for t in files()["mlflow-steps-workflow-template.yaml"]["spec"]["templates"]
        if t["name"] == RUNTIME.name
    )
    container = runtime["container"]
    assert container["envFrom"][0]["secretRef"]["name"] == "{{inputs.parameters.mlflow-secret}}"
    assert not {e["name"] for e in container["env"]} & set(RUNTIME.secret_env)


def test_hera_example_prints_a_valid_workflow():
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "hera_pipeline.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    workflow = yaml.safe_load(done.stdout)
    validate(workflow)
    templates = {t["name"] for t in workflow["spec"]["templates"]}
    assert {BUILDER.name, RUNTIME.name} <= templates
    train = workflow["spec"]["templates"][0]["dag"]["tasks"][1]
    image = next(p for p in train["arguments"]["parameters"] if p["name"] == "image")
    assert image["value"] == "{{tasks.build.outputs.parameters.image}}"

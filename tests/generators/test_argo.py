"""Generated Argo objects (built with Hera): valid against argo-workflows' JSON schema with
unknown fields rejected; parameter references resolve; the Hera components compose."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("engine", ["none", "kaniko", "buildah"])
def test_generated_objects_are_valid(engine):
    for obj in files(build_engine=engine).values():
        if isinstance(obj, dict):  # the RBAC file is Kubernetes' own kinds, as text
            validate(obj)


def test_buildah_builder_keeps_its_store_on_an_empty_dir():
    def builder(engine: str) -> dict:
        template = files()["mlflow-steps-workflow-template.yaml"]
        name = "mlflow-builder-" + engine
        return next(t for t in template["spec"]["templates"] if t["name"] == name)

    buildah = builder("buildah")
    assert buildah["volumes"] == [{"name": "varlibcontainers", "emptyDir": {}}]
    assert buildah["container"]["volumeMounts"] == [
        {"name": "varlibcontainers", "mountPath": "/var/lib/containers"}
    ]
    assert buildah["container"]["securityContext"] == {"privileged": True}
    # Root declared for the pod too: it replaces the workflow's restricted securityContext.
    assert buildah["securityContext"] == {"runAsNonRoot": False, "runAsUser": 0}
    # Kaniko's: the downloads and the codeset on emptyDirs, the two registry Secrets (each
    # mounted into chosen containers only: test_kaniko_split.py), no buildah store.
    assert [v["name"] for v in builder("kaniko")["volumes"]] == [
        "mlflow-steps-downloads",
        "mlflow-steps-job",
        "codeset",
        "registry-secret",
        "base-pull-secret",
    ]
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


def test_pods_get_no_token_but_the_executor_does_and_resources_are_parameters():
    generated = files()
    template = generated["mlflow-steps-workflow-template.yaml"]
    assert template["spec"]["securityContext"]["runAsNonRoot"] is True  # checkov CKV_ARGO_2
    assert template["spec"]["serviceAccountName"] == "mlflow-steps"  # CKV_ARGO_1
    for tpl in template["spec"]["templates"]:
        assert tpl["automountServiceAccountToken"] is False
        assert tpl["executor"] == {
            "serviceAccountName": "{{inputs.parameters.executor-service-account}}"
        }
        declared = {p["name"]: p.get("default") for p in tpl["inputs"]["parameters"]}
        spec = RUNTIME if tpl["name"] == RUNTIME.name else BUILDER
        assert declared["memory-limit"] == spec.resources.memory_limit
        patch = json.loads(tpl["podSpecPatch"])
        (main,) = patch["containers"]
        # A container set's resources are its `build` container's (Kaniko's), not `main`'s
        # (the push).
        assert main["name"] == ("build" if "containerSet" in tpl else "main")
        assert main["resources"]["limits"]["memory"] == "{{inputs.parameters.memory-limit}}"
    documents = list(yaml.safe_load_all(generated["mlflow-steps-rbac.yaml"]))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert ("Secret", "mlflow-steps-executor.service-account-token") in kinds
    role = next(d for d in documents if d["kind"] == "Role")
    assert role["rules"] == [
        {
            "apiGroups": ["argoproj.io"],
            "resources": ["workflowtaskresults"],
            "verbs": ["create", "patch"],
        }
    ]


def test_builder_outputs_carry_the_provenance_facts():
    template = files()["mlflow-steps-workflow-template.yaml"]
    builder = next(t for t in template["spec"]["templates"] if t["name"] == BUILDER.name)
    outputs = [p["name"] for p in builder["outputs"]["parameters"]]
    assert outputs == ["image", "digest", "source-uri", "source-digest"]
    assert builder["container"]["image"].startswith("ghcr.io/mlflow-steps/mlflow-builder:")
    assert {"name": "FUSEML_ENGINE", "value": "none"} in builder["container"]["env"]


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

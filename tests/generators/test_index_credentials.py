"""Every generated engine object takes the package indexes' credentials from a Kubernetes Secret
(FuseML: from an Extension Registry record), each engine its own way, and no parameter carries
a credential. Schema validity of the same objects: test_tekton.py and test_argo.py."""

from __future__ import annotations

import re

import jsonschema
import yaml

from mlflow_steps.components.builder.planning.indexes import NETRC_ENV
from mlflow_steps.components.steps import INDEX_SECRET, INDEX_SECRET_KEY
from mlflow_steps.generators import argo, fuseml, tekton
from mlflow_steps.generators.catalog import GenerateOptions, generate, kfp_files
from tests.support.schemas import argo_validator_schema, tekton_schema

USERINFO = re.compile(r"://[^/\s'\"]*@")


def secret_env(env: list[dict], name_reference: str) -> dict:
    (item,) = [e for e in env if e["name"] == NETRC_ENV]
    assert item["valueFrom"] == {
        "secretKeyRef": {"name": name_reference, "key": INDEX_SECRET_KEY, "optional": True}
    }
    return item


def test_tekton_builder_task_and_pipeline_take_the_netrc_from_a_secret():
    for engine in ("none", "kaniko", "buildah"):
        out = tekton.files(tekton.TektonOptions(build_engine=engine))
        name = "mlflow-builder" if engine == "none" else f"mlflow-builder-{engine}"
        task = out[f"task/{name}/0.1/{name}.yaml"]
        step = task["spec"]["steps"][0]  # Kaniko's `download` (its `build` has none)
        secret_env(step["env"], "$(params.INDEX_SECRET)")
        param = next(p for p in task["spec"]["params"] if p["name"] == "INDEX_SECRET")
        assert param["default"] == INDEX_SECRET.default == "index-credentials"
        jsonschema.validate(task, tekton_schema("Task"))
        pipeline = out["pipeline/mlflow-build-and-train/0.1/mlflow-build-and-train.yaml"]
        build = next(t for t in pipeline["spec"]["tasks"] if t["name"] == "build")
        assert {"name": "INDEX_SECRET", "value": "$(params.INDEX_SECRET)"} in build["params"]
        assert "INDEX_SECRET" in {p["name"] for p in pipeline["spec"]["params"]}
        jsonschema.validate(pipeline, tekton_schema("Pipeline"))


def test_argo_builder_template_takes_the_netrc_from_a_secret():
    for engine in ("none", "kaniko", "buildah"):
        for name, obj in argo.files(build_engine=engine).items():
            if not isinstance(obj, dict):
                continue  # the RBAC file: no template
            if name.startswith("examples/"):
                (dag,) = [t for t in obj["spec"]["templates"] if "dag" in t]
                build = next(t for t in dag["dag"]["tasks"] if t["name"] == "build")
                passed = {p["name"]: p["value"] for p in build["arguments"]["parameters"]}
                assert passed["index-secret"] == "{{workflow.parameters.index-secret}}"
            else:
                builders = [t for t in obj["spec"]["templates"] if "builder" in t["name"]]
                assert len(builders) == 3
                for builder in builders:
                    # Kaniko's container set: its `download` container.
                    container = builder.get("container") or builder["containerSet"]["containers"][0]
                    secret_env(container["env"], "{{inputs.parameters.index-secret}}")
                    declared = {p["name"]: p for p in builder["inputs"]["parameters"]}
                    assert declared["index-secret"]["default"] == "index-credentials"
            jsonschema.validate(obj, argo_validator_schema(obj["kind"]))


def test_hera_component_takes_the_netrc_from_a_secret():
    from mlflow_steps.pipelines.hera import mlflow_builder

    built = mlflow_builder._build_template().container.env  # hera's own model of the container
    (item,) = [e for e in built if e.name == NETRC_ENV]
    assert item.value_from.secret_key_ref.key == INDEX_SECRET_KEY
    assert item.value_from.secret_key_ref.name == "{{inputs.parameters.index-secret}}"
    assert item.value_from.secret_key_ref.optional is True


def test_kfp_pipeline_hands_the_build_task_the_secret_with_kfp_kubernetes():
    text = kfp_files(GenerateOptions())["mlflow-build-and-train.yaml"]
    pipeline, platform = yaml.safe_load_all(text)
    assert pipeline["root"]["inputDefinitions"]["parameters"]["index_secret"] == {
        "defaultValue": "index-credentials",
        "isOptional": True,
        "parameterType": "STRING",
    }
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-mlflow-builder"]["secretAsEnv"] == [
        {
            "keyToEnv": [{"envVar": NETRC_ENV, "secretKey": INDEX_SECRET_KEY}],
            "optional": True,
            "secretNameParameter": {"componentInputParameter": "index_secret"},
        }
    ]


def test_fuseml_builder_steps_reference_the_index_extension():
    for workflow in fuseml.files().values():
        builder = next(s for s in workflow["steps"] if s["name"] == "builder")
        assert builder["extensions"] == [fuseml.INDEX_EXTENSION]
        # Inputs are workflow references, never literals (let alone credentials).
        assert all(i["value"].startswith("{{ inputs.") for i in builder["inputs"] if "value" in i)


def test_no_generated_file_carries_a_credential(tmp_path):
    """Plain index URLs may be parameters; no value anywhere has user information."""
    written = generate(["tekton", "argo", "fuseml", "kfp"], tmp_path, GenerateOptions())
    assert written
    for path in written:
        text = path.read_text()
        assert not USERINFO.search(text), path

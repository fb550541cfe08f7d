"""The Kaniko builder variant in three containers (issue 23 item 1): Kaniko runs a
Dockerfile's RUN lines in its own container without isolation, so the container that runs
Kaniko's build (where a codeset's sdist or path requirement is built) gets no index Secret and
no registry credential: no secretKeyRef, no volume of either, no index setting, DOCKER_CONFIG
naming only the optional base-pull Secret. A `download` container before it holds the index
Secret and only downloads into an emptyDir they all mount; a `push` container after it holds
the registry Secret and pushes the OCI image layout the build wrote
(components/builder/backends/split.py).

Kaniko and a Kubernetes API cannot run here: these tests read the generated objects (Tekton
Task, Argo templates, the Hera component), schema-checked against ../shared/schemas.
"""

from __future__ import annotations

import json

import jsonschema
import yaml

from mlflow_steps.components.builder.planning.indexes import NETRC_ENV
from mlflow_steps.components.steps import (
    BASE_PULL_CONFIG,
    BUILDER,
    DOWNLOADS,
    DOWNLOADS_VOLUME,
    INDEX_INPUTS,
    JOB,
    JOB_VOLUME,
    REGISTRY_CONFIG,
)
from mlflow_steps.generators import argo, tekton
from tests.support.schemas import argo_validator_schema, tekton_schema

INDEX_ENV = {BUILDER.input(name).env for name in INDEX_INPUTS} | {NETRC_ENV}


def holds_index(container: dict) -> bool:
    """Whether a container (or step) could see the index Secret or settings."""
    text = json.dumps(container)
    names = {e["name"] for e in container.get("env", [])}
    return bool(names & INDEX_ENV) or "secretKeyRef" in text or "index-secret" in text.lower()


def holds_registry(container: dict) -> bool:
    """Whether a container (or step) could see the registry's push credentials: the registry
    Secret mounted, DOCKER_CONFIG naming it, or a dockerconfig workspace (mounted into every
    step)."""
    text = json.dumps(container)
    return REGISTRY_CONFIG in text or "dockerconfig" in text or "registry-secret" in text


def test_tekton_kaniko_task_downloads_builds_and_pushes_in_three_steps():
    out = tekton.files(tekton.TektonOptions(build_engine="kaniko"))
    task = out["task/mlflow-builder-kaniko/0.1/mlflow-builder-kaniko.yaml"]
    download, build, push = task["spec"]["steps"]
    assert (download["name"], build["name"], push["name"]) == ("download", "build", "push")
    assert download["args"][1:] == ["--phase", "download", "--downloads", DOWNLOADS, "--job", JOB]
    assert build["args"][1:] == ["--phase", "install", "--downloads", DOWNLOADS]  # no results
    assert push["args"][1:5] == ["--phase", "push", "--downloads", DOWNLOADS]
    assert download["image"] == push["image"]  # the project's step image, Kaniko not running
    assert holds_index(download) and not holds_index(build) and not holds_index(push)
    assert {NETRC_ENV, "FUSEML_PIP_INDEX_URL"} <= {e["name"] for e in download["env"]}
    # The registry Secret: a volume mounted into download and push only; no workspace of it
    # (a Task's workspace is mounted into every step).
    assert holds_registry(download) and holds_registry(push) and not holds_registry(build)
    assert [w["name"] for w in task["spec"]["workspaces"]] == ["source"]
    volumes = {v["name"]: v for v in task["spec"]["volumes"]}
    assert volumes == {
        DOWNLOADS_VOLUME: {"name": DOWNLOADS_VOLUME, "emptyDir": {}},
        JOB_VOLUME: {"name": JOB_VOLUME, "emptyDir": {}},
        "registry-secret": {
            "name": "registry-secret",
            "secret": {"secretName": "$(params.REGISTRY_SECRET)", "optional": True},
        },
        "base-pull-secret": {
            "name": "base-pull-secret",
            "secret": {"secretName": "$(params.BASE_PULL_SECRET)", "optional": True},
        },
    }
    shared = {"name": DOWNLOADS_VOLUME, "mountPath": DOWNLOADS}
    registry = {"name": "registry-secret", "mountPath": REGISTRY_CONFIG, "readOnly": True}
    base_pull = {"name": "base-pull-secret", "mountPath": BASE_PULL_CONFIG, "readOnly": True}
    job = {"name": JOB_VOLUME, "mountPath": JOB}  # the tag and the SBOM: not `build`'s
    assert download["volumeMounts"] == push["volumeMounts"] == [shared, job, registry]
    assert build["volumeMounts"] == [shared, base_pull]
    assert download["args"][-2:] == ["--job", JOB] and "--job" not in build["args"]
    assert push["args"][push["args"].index("--job") + 1] == JOB
    docker_config = {s["name"]: docker_config_of(s) for s in (download, build, push)}
    assert docker_config == {
        "download": REGISTRY_CONFIG,
        "build": BASE_PULL_CONFIG,
        "push": REGISTRY_CONFIG,
    }
    for step in (download, build, push):
        assert step["securityContext"] == {"runAsUser": 0}
    # The results are the push step's.
    assert any("$(results.IMAGE_URL.path)" in arg for arg in push["args"])
    assert not any("$(results." in arg for arg in download["args"] + build["args"])
    jsonschema.validate(task, tekton_schema("Task"))
    # The Pipeline passes the Secret names, and binds no dockerconfig workspace to the Task.
    pipeline = out["pipeline/mlflow-build-and-train/0.1/mlflow-build-and-train.yaml"]
    (call,) = [t for t in pipeline["spec"]["tasks"] if t["name"] == "build"]
    assert call["workspaces"] == [{"name": "source", "workspace": "source"}]
    assert {"name": "REGISTRY_SECRET", "value": "$(params.REGISTRY_SECRET)"} in call["params"]
    run = out["pipeline/mlflow-build-and-train/0.1/samples/mlflow-build-and-train-run.yaml"]
    assert "dockerconfig" not in json.dumps(run)
    jsonschema.validate(pipeline, tekton_schema("Pipeline"))
    # The other variants keep one step, with the index Secret and the dockerconfig workspace.
    for name in ("mlflow-builder", "mlflow-builder-buildah"):
        (step,) = out[f"task/{name}/0.1/{name}.yaml"]["spec"]["steps"]
        assert holds_index(step) and holds_registry(step)


def docker_config_of(container: dict) -> str:
    (value,) = [e["value"] for e in container["env"] if e["name"] == "DOCKER_CONFIG"]
    return value


def test_argo_kaniko_template_is_a_container_set_whose_build_holds_no_secret():
    for name in (
        "mlflow-steps-workflow-template.yaml",
        "mlflow-steps-cluster-workflow-template.yaml",
    ):
        obj = argo.files(build_engine="kaniko")[name]
        template = next(t for t in obj["spec"]["templates"] if t["name"] == "mlflow-builder-kaniko")
        download, build, main = template["containerSet"]["containers"]
        assert (download["name"], build["name"], main["name"]) == ("download", "build", "main")
        assert build["dependencies"] == ["download"] and main["dependencies"] == ["build"]
        assert holds_index(download) and not holds_index(build) and not holds_index(main)
        assert holds_registry(download) and holds_registry(main) and not holds_registry(build)
        assert docker_config_of(build) == BASE_PULL_CONFIG
        assert docker_config_of(download) == docker_config_of(main) == REGISTRY_CONFIG
        assert "--phase" in download["args"] and "download" in download["args"]
        assert build["args"][1:] == ["--phase", "install", "--downloads", DOWNLOADS]
        assert main["args"][1:7] == ["--phase", "push", "--downloads", DOWNLOADS, "--job", JOB]
        mounts = {
            c["name"]: {v["name"] for v in c["volumeMounts"]} for c in (download, build, main)
        }
        assert JOB_VOLUME in mounts["download"] and JOB_VOLUME in mounts["main"]
        assert JOB_VOLUME not in mounts["build"]  # the build container never chooses the tag
        assert "--output" in main["args"]  # Argo reads a container set's outputs from main
        volumes = {v["name"]: v for v in template["volumes"]}
        assert set(volumes) == {
            DOWNLOADS_VOLUME, JOB_VOLUME, "codeset", "registry-secret", "base-pull-secret"
        }  # fmt: skip
        assert volumes["registry-secret"]["secret"] == {
            "secretName": "{{inputs.parameters.registry-secret}}",
            "optional": True,
        }
        # The codeset artifact is on a volume every container sees.
        assert template["containerSet"]["volumeMounts"] == [
            {"name": "codeset", "mountPath": "/project"}
        ]
        assert {"name": "codeset", "path": "/project"} in template["inputs"]["artifacts"]
        # Kaniko's requests and limits are the parameters (the pod's patch names `build`).
        assert json.loads(template["podSpecPatch"])["containers"][0]["name"] == "build"
        jsonschema.validate(obj, argo_validator_schema(obj["kind"]))


def test_hera_kaniko_component_is_the_same_container_set():
    from hera.workflows import ContainerSet

    from mlflow_steps.pipelines.hera import builder_container

    built = builder_container(build_engine="kaniko")
    assert isinstance(built, ContainerSet)
    nodes = {c.name: c for c in built.containers}
    assert list(nodes) == ["download", "build", "main"]
    for name in ("build", "main"):
        assert not {e.name for e in nodes[name].env or []} & INDEX_ENV
    mounts = {name: {v.name for v in node.volume_mounts or []} for name, node in nodes.items()}
    assert "registry-secret" not in mounts["build"] and JOB_VOLUME not in mounts["build"]
    assert JOB_VOLUME in mounts["main"] and JOB_VOLUME in mounts["download"]
    assert "registry-secret" in mounts["main"] and "registry-secret" in mounts["download"]


def test_kfp_kaniko_build_component_has_no_registry_secret():
    """The KFP build task: no registry Secret mounted, DOCKER_CONFIG the base-pull Secret's
    folder (test_kfp.py checks the whole pipeline)."""
    from mlflow_steps.generators.catalog import GenerateOptions, kfp_files

    pipeline, platform = yaml.safe_load_all(
        kfp_files(GenerateOptions(build_engine="kaniko"))["mlflow-build-and-train.yaml"]
    )
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    build = executors["exec-mlflow-builder-kaniko"]
    assert "registry_secret" not in json.dumps(build) and "secretAsEnv" not in build
    container = pipeline["deploymentSpec"]["executors"]["exec-mlflow-builder-kaniko"]["container"]
    assert not holds_registry(container) and not holds_index(container)

"""The Kaniko builder variant in two containers (issue 23 item 1): Kaniko runs a Dockerfile's
RUN lines in its own container without isolation, so the container that runs Kaniko's build
(where a codeset's sdist or path requirement is built) gets no index Secret at all: no
secretKeyRef, no volume of it, no index setting. A `download` container before it holds the
Secret and only downloads into an emptyDir both mount (components/builder/backends/split.py).

Kaniko and a Kubernetes API cannot run here: these tests read the generated objects (Tekton
Task, Argo templates, the Hera component), schema-checked against ../shared/schemas.
"""

from __future__ import annotations

import json

import jsonschema

from mlflow_steps.components.builder.planning.indexes import NETRC_ENV
from mlflow_steps.components.steps import BUILDER, DOWNLOADS, DOWNLOADS_VOLUME, INDEX_INPUTS
from mlflow_steps.generators import argo, tekton
from tests.support.schemas import argo_validator_schema, tekton_schema

INDEX_ENV = {BUILDER.input(name).env for name in INDEX_INPUTS} | {NETRC_ENV}


def holds_index(container: dict) -> bool:
    """Whether a container (or step) could see the index Secret or settings."""
    text = json.dumps(container)
    names = {e["name"] for e in container.get("env", [])}
    return bool(names & INDEX_ENV) or "secretKeyRef" in text or "index-secret" in text.lower()


def test_tekton_kaniko_task_downloads_in_a_step_of_its_own():
    out = tekton.files(tekton.TektonOptions(build_engine="kaniko"))
    task = out["task/mlflow-builder-kaniko/0.1/mlflow-builder-kaniko.yaml"]
    download, build = task["spec"]["steps"]
    assert (download["name"], build["name"]) == ("download", "build")
    assert download["args"][1:] == ["--phase", "download", "--downloads", DOWNLOADS]
    assert build["args"][1:5] == ["--phase", "install", "--downloads", DOWNLOADS]
    assert holds_index(download) and not holds_index(build)
    assert {NETRC_ENV, "FUSEML_PIP_INDEX_URL"} <= {e["name"] for e in download["env"]}
    # No volume of a secret anywhere; the downloads on an emptyDir both mount.
    assert task["spec"]["volumes"] == [{"name": DOWNLOADS_VOLUME, "emptyDir": {}}]
    for step in (download, build):
        assert step["volumeMounts"] == [{"name": DOWNLOADS_VOLUME, "mountPath": DOWNLOADS}]
        assert step["securityContext"] == {"runAsUser": 0}
    # The results are the build step's.
    assert any("$(results.IMAGE_URL.path)" in arg for arg in build["args"])
    assert not any("$(results." in arg for arg in download["args"])
    jsonschema.validate(task, tekton_schema("Task"))
    # The other variants keep one step, with the index Secret.
    for name in ("mlflow-builder", "mlflow-builder-buildah"):
        (step,) = out[f"task/{name}/0.1/{name}.yaml"]["spec"]["steps"]
        assert holds_index(step)


def test_argo_kaniko_template_is_a_container_set_whose_main_holds_no_index_secret():
    for name in (
        "mlflow-steps-workflow-template.yaml",
        "mlflow-steps-cluster-workflow-template.yaml",
    ):
        obj = argo.files(build_engine="kaniko")[name]
        template = next(t for t in obj["spec"]["templates"] if t["name"] == "mlflow-builder-kaniko")
        download, main = template["containerSet"]["containers"]
        assert (download["name"], main["name"]) == ("download", "main")
        assert main["dependencies"] == ["download"]
        assert holds_index(download) and not holds_index(main)
        assert "--phase" in download["args"] and "download" in download["args"]
        assert main["args"][1:5] == ["--phase", "install", "--downloads", DOWNLOADS]
        volumes = {v["name"]: v for v in template["volumes"]}
        assert set(volumes) == {DOWNLOADS_VOLUME, "codeset"}
        assert all(v == {"name": k, "emptyDir": {}} for k, v in volumes.items())  # no secret
        # The codeset artifact is on a volume both containers see.
        assert template["containerSet"]["volumeMounts"] == [
            {"name": "codeset", "mountPath": "/project"}
        ]
        assert {"name": "codeset", "path": "/project"} in template["inputs"]["artifacts"]
        jsonschema.validate(obj, argo_validator_schema(obj["kind"]))


def test_hera_kaniko_component_is_the_same_container_set():
    from hera.workflows import ContainerSet

    from mlflow_steps.pipelines.hera import builder_container

    built = builder_container(build_engine="kaniko")
    assert isinstance(built, ContainerSet)
    main = next(c for c in built.containers if c.name == "main")
    assert not {e.name for e in main.env or []} & INDEX_ENV

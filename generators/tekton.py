"""Step specs -> Tekton v1 Tasks and a Pipeline, in the Tekton catalog's layout.

Params are UPPER_SNAKE; they reach the step through `env` (FUSEML_<INPUT>), never pasted into
a script. Credentials come from Secrets (`envFrom`), never literals.

One builder Task per variant (`mlflow-builder`: no engine, non-root; `mlflow-builder-buildah`,
`mlflow-builder-kaniko`), each step's `securityContext` from the spec: the `restricted` Pod
Security Standard's fields, or the variant's privileges declared explicitly. What a Task cannot
set is in the samples' `podTemplate` (`automountServiceAccountToken: false`, the pod's
securityContext) and `taskRunSpecs` (compute resources, which Task params cannot carry: a
`$(params.X)` is no Kubernetes quantity when the Task is admitted).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from mlflow_steps import __version__
from mlflow_steps.components.spec import NONROOT_UID, Input, Security, StepSpec
from mlflow_steps.components.steps import (
    BASE_PULL_CONFIG,
    BASE_PULL_SECRET,
    BUILDAH_STORE,
    BUILDAH_STORE_VOLUME,
    BUILDER,
    BUILDER_VARIANTS,
    DOWNLOADS,
    DOWNLOADS_VOLUME,
    IMAGE_ENV,
    IN_MEMORY_STAGING,
    INDEX_INPUTS,
    INDEX_SECRET,
    INDEX_SECRET_KEY,
    JOB,
    JOB_VOLUME,
    NETRC_ENV,
    REGISTRY_CONFIG,
    REGISTRY_SECRET,
    RUNTIME,
    SHM,
    SHM_VOLUME,
    SPLIT_ENGINES,
    BuilderVariant,
    builder_inputs,
    builder_variant,
    phase_args,
)

from .naming import tekton_param, tekton_result

MIN_PIPELINES_VERSION = "0.50.0"
CATALOG_VERSION = ".".join(__version__.split(".")[:2])


@dataclass(frozen=True)
class TektonOptions:
    """`build_engine`: the builder variant the Pipeline calls; `builder_image` replaces that
    variant's image (the other variants keep the project's)."""

    build_engine: str = "none"
    builder_image: str = ""
    version: str = CATALOG_VERSION

    def variant(self) -> BuilderVariant:
        return builder_variant(self.build_engine)

    def image(self, variant: BuilderVariant) -> str:
        return variant.image(self.builder_image if variant.engine == self.build_engine else "")


def metadata(spec: StepSpec, version: str, tags: str) -> dict[str, Any]:
    return {
        "name": spec.name,
        "labels": {"app.kubernetes.io/version": version},
        "annotations": {
            "tekton.dev/pipelines.minVersion": MIN_PIPELINES_VERSION,
            "tekton.dev/categories": "Machine Learning, Image Build",
            "tekton.dev/tags": tags,
            "tekton.dev/displayName": spec.display_name,
            "tekton.dev/platforms": "linux/amd64",
        },
    }


def param(item: Input) -> dict[str, Any]:
    return {
        "name": tekton_param(item.name),
        "type": "string",
        "description": item.description,
        "default": item.default,
    }


def env_from_params(spec: StepSpec) -> list[dict[str, str]]:
    return [
        {"name": item.env, "value": f"$(params.{tekton_param(item.name)})"}
        for item in spec.engine_inputs
    ]


def output_args(spec: StepSpec) -> list[str]:
    args: list[str] = []
    for output in spec.outputs:
        args += [spec.output_flags[output.name], f"$(results.{tekton_result(output.name)}.path)"]
    return args


def results(spec: StepSpec) -> list[dict[str, Any]]:
    """String results, and an object result (JSON the step writes) for an output with fields."""
    found: list[dict[str, Any]] = []
    for o in spec.outputs:
        result: dict[str, Any] = {"name": tekton_result(o.name), "type": "string"}
        if o.fields:
            result["type"] = "object"
            result["properties"] = {f.name: {"type": "string"} for f in o.fields}
        found.append({**result, "description": o.description})
    return found


def container_security(security: Security) -> dict[str, Any]:
    return security.container_context()


def pod_template(security: Security) -> dict[str, Any]:
    """What a TaskRun/PipelineRun sets for the pod (a Task cannot): no service account token
    (no step uses the Kubernetes API; Tekton's entrypoint reports results through the
    termination message), and for a restricted step the pod's non-root settings (`fsGroup` makes
    a fresh workspace volume writable by the step's user)."""
    template: dict[str, Any] = {"automountServiceAccountToken": False}
    if security.restricted:
        template["securityContext"] = {
            "runAsNonRoot": True,
            "runAsUser": NONROOT_UID,
            "runAsGroup": NONROOT_UID,
            "fsGroup": NONROOT_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    return template


def index_credentials_env() -> dict[str, Any]:
    """The index credentials: one key of the Secret INDEX_SECRET names, as an env var."""
    return {
        "name": NETRC_ENV,
        "valueFrom": {
            "secretKeyRef": {
                "name": f"$(params.{tekton_param(INDEX_SECRET.name)})",
                "key": INDEX_SECRET_KEY,
                "optional": True,
            }
        },
    }


def builder_task(options: TektonOptions, variant: BuilderVariant | None = None) -> dict[str, Any]:
    spec = BUILDER
    variant = variant or options.variant()
    env = [
        *env_from_params(spec),
        {"name": "FUSEML_ENGINE", "value": variant.engine},
        {"name": "DOCKER_CONFIG", "value": "$(workspaces.dockerconfig.path)"},
        index_credentials_env(),
    ]
    step: dict[str, Any] = {
        "name": "build",
        "image": options.image(variant),
        "workingDir": "$(workspaces.source.path)",
        "env": env,
        "command": ["mlflow-steps", "build"],
        "args": ["$(workspaces.source.path)", *output_args(spec)],
        "computeResources": spec.resources.kubernetes(),
        "securityContext": container_security(variant.security),
    }
    task_spec: dict[str, Any] = {
        "description": f"{spec.description} {variant.why}",
        "params": [param(i) for i in builder_inputs(variant.engine)],
        "workspaces": [
            {
                "name": "source",
                "description": "The source workspace; the MLflow codeset is its CONTEXT folder.",
            },
            {
                "name": "dockerconfig",
                "description": "A docker config.json with registry credentials.",
                "optional": True,
            },
        ],
        "results": results(spec),
        "steps": [step],
    }
    if variant.engine == "buildah":
        # buildah's store on an emptyDir: the overlay driver cannot sit on the container's own
        # overlay root, and vfs there copies every layer into the node's writable layer.
        step["volumeMounts"] = [{"name": BUILDAH_STORE_VOLUME, "mountPath": BUILDAH_STORE}]
        task_spec["volumes"] = [{"name": BUILDAH_STORE_VOLUME, "emptyDir": {}}]
        env.append({"name": "STORAGE_DRIVER", "value": "$(params.STORAGE_DRIVER)"})
    if variant.engine in IN_MEMORY_STAGING:
        step["volumeMounts"] = [{"name": SHM_VOLUME, "mountPath": SHM}]
        task_spec["volumes"] = [{"name": SHM_VOLUME, "emptyDir": {"medium": "Memory"}}]
    if variant.engine in SPLIT_ENGINES:
        split_steps(step, task_spec)
    meta = metadata(spec, options.version, "mlflow, image-build, " + variant.engine)
    meta["name"] = variant.name
    return {"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": meta, "spec": task_spec}


def secret_volume(name: str, item: Input) -> dict[str, Any]:
    """A Task volume of the Secret the param `item` names (optional: absent, it is empty)."""
    secret = {"secretName": f"$(params.{tekton_param(item.name)})", "optional": True}
    return {"name": name, "secret": secret}


REGISTRY_VOLUME = "registry-secret"
BASE_PULL_VOLUME = "base-pull-secret"


def split_steps(step: dict[str, Any], task_spec: dict[str, Any]) -> None:
    """The Kaniko variant in three steps sharing an emptyDir (components/builder/backends/
    split.py): `download` holds the index Secret, the index settings and the registry Secret
    and only downloads, and plans the job (tag, SBOM) into an emptyDir that only `push` shares;
    `build` (Kaniko, whose RUNs are not isolated from its container) gets
    none of them, only the optional base-pull Secret, and writes an OCI image layout; `push`
    (the same image, not Kaniko running) holds the registry Secret, pushes the layout and
    writes the results. The registry credentials are a Secret volume mounted into `download`
    and `push` only: a workspace would be mounted into every step."""
    index_env = {BUILDER.input(name).env for name in INDEX_INPUTS} | {NETRC_ENV}
    downloads = {"name": DOWNLOADS_VOLUME, "mountPath": DOWNLOADS}
    job = {"name": JOB_VOLUME, "mountPath": JOB}  # never into `build`: the tag and the SBOM
    registry = {"name": REGISTRY_VOLUME, "mountPath": REGISTRY_CONFIG, "readOnly": True}
    base_pull = {"name": BASE_PULL_VOLUME, "mountPath": BASE_PULL_CONFIG, "readOnly": True}

    def env(keep_index: bool, docker_config: str) -> list[dict[str, Any]]:
        kept = [
            copy.deepcopy(e)
            for e in step["env"]
            if e["name"] != "DOCKER_CONFIG" and (keep_index or e["name"] not in index_env)
        ]
        return [*kept, {"name": "DOCKER_CONFIG", "value": docker_config}]

    source = "$(workspaces.source.path)"
    download = {
        **copy.deepcopy(step),
        "name": "download",
        "env": env(True, REGISTRY_CONFIG),
        "args": [source, *phase_args("download")],
        "volumeMounts": [downloads, job, registry],
    }
    build = {
        **copy.deepcopy(step),
        "env": env(False, BASE_PULL_CONFIG),
        "args": [source, *phase_args("install")],
        "volumeMounts": [downloads, base_pull],
    }
    push = {
        **copy.deepcopy(step),
        "name": "push",
        "env": env(False, REGISTRY_CONFIG),
        "args": [source, *phase_args("push"), *output_args(BUILDER)],
        "volumeMounts": [downloads, job, registry],
    }
    task_spec["steps"] = [download, build, push]
    task_spec["workspaces"] = [w for w in task_spec["workspaces"] if w["name"] != "dockerconfig"]
    task_spec["volumes"] = [
        *task_spec.get("volumes", []),
        {"name": DOWNLOADS_VOLUME, "emptyDir": {}},
        {"name": JOB_VOLUME, "emptyDir": {}},
        secret_volume(REGISTRY_VOLUME, REGISTRY_SECRET),
        secret_volume(BASE_PULL_VOLUME, BASE_PULL_SECRET),
    ]


def runtime_task(options: TektonOptions) -> dict[str, Any]:
    spec = RUNTIME
    params = [
        {
            "name": "IMAGE",
            "type": "string",
            "description": "The environment image: mlflow-builder's IMAGE_URL.",
        },
        *[param(i) for i in spec.inputs],
        {
            "name": "MLFLOW_SECRET",
            "type": "string",
            "default": "mlflow-credentials",
            "description": "Secret whose keys become env vars ("
            + ", ".join(spec.secret_env)
            + "); optional.",
        },
    ]
    step = {
        "name": "run",
        "image": "$(params.IMAGE)",
        "workingDir": "$(workspaces.source.path)",
        "env": [*env_from_params(spec), {"name": IMAGE_ENV, "value": "$(params.IMAGE)"}],
        "envFrom": [{"secretRef": {"name": "$(params.MLFLOW_SECRET)", "optional": True}}],
        "command": list(spec.command[:3]),
        "args": ["$(workspaces.source.path)", *output_args(spec)],
        "computeResources": spec.resources.kubernetes(),
        "securityContext": container_security(spec.security),
    }
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "Task",
        "metadata": metadata(spec, options.version, "mlflow, training"),
        "spec": {
            "description": spec.description,
            "params": params,
            "workspaces": [
                {
                    "name": "source",
                    "description": "The same workspace the image was built from; the codeset "
                    "is its CONTEXT folder.",
                }
            ],
            "results": results(spec),
            "steps": [step],
        },
    }


DOCKERCONFIG_WORKSPACE = {
    "name": "dockerconfig",
    "optional": True,
    "description": "docker config.json with registry credentials.",
}


def passed_params(items: list[Input]) -> list[dict[str, str]]:
    return [
        {"name": tekton_param(i.name), "value": f"$(params.{tekton_param(i.name)})"} for i in items
    ]


def pipeline(options: TektonOptions) -> dict[str, Any]:
    # Every input of both Tasks is a Pipeline param (a user's base image, index or entry point
    # must reach the steps); an input both steps have (VERBOSE) is one param for both.
    variant = options.variant()
    build_inputs, train_inputs = builder_inputs(variant.engine), list(RUNTIME.inputs)
    build_names = {i.name for i in build_inputs}
    # image_digest comes from the build, not from a Pipeline param.
    train_inputs = [i for i in train_inputs if i.name != "image_digest"]
    only_train = [i for i in train_inputs if i.name not in build_names]
    # The Kaniko Task takes its registry credentials from a Secret (REGISTRY_SECRET), mounted
    # into chosen steps, not from a workspace, which every step would see.
    dockerconfig = [] if variant.engine in SPLIT_ENGINES else [DOCKERCONFIG_WORKSPACE]
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "Pipeline",
        "metadata": {
            "name": "mlflow-build-and-train",
            "labels": {"app.kubernetes.io/version": options.version},
            "annotations": metadata(BUILDER, options.version, "mlflow")["annotations"]
            | {"tekton.dev/displayName": "MLflow build and train"},
        },
        "spec": {
            "description": (
                "Clones an MLflow codeset (or uses the one in the `source` workspace when "
                "GIT_URL is empty), builds its environment image, runs an entry point in it "
                "and returns the model URL."
            ),
            "params": [
                {
                    "name": "GIT_URL",
                    "type": "string",
                    "default": "",
                    "description": "Git repository of the codeset; empty: `source` holds it.",
                },
                {
                    "name": "GIT_REVISION",
                    "type": "string",
                    "default": "main",
                    "description": "Revision to check out.",
                },
                *[param(i) for i in build_inputs + only_train],
                {
                    "name": "MLFLOW_SECRET",
                    "type": "string",
                    "default": "mlflow-credentials",
                    "description": "Secret with MLFLOW_TRACKING_URI, AWS_* ... for the trainer.",
                },
            ],
            "workspaces": [
                {"name": "source", "description": "Holds the codeset (in its CONTEXT folder)."},
                *dockerconfig,
            ],
            "results": [
                {
                    "name": "IMAGE_URL",
                    "value": "$(tasks.build.results.IMAGE_URL)",
                    "description": "The environment image.",
                },
                {
                    "name": "IMAGE_DIGEST",
                    "value": "$(tasks.build.results.IMAGE_DIGEST)",
                    "description": "Its manifest digest (with IMAGE_URL: Tekton Chains' subject).",
                },
                {
                    "name": "MODEL_URL",
                    "value": "$(tasks.train.results.MODEL_URL)",
                    "description": "The model the entry point logged.",
                },
                {
                    "name": "MODEL_URI",
                    "value": "$(tasks.train.results.MODEL_URI)",
                    "description": "models:/<model_id> of the logged model (empty before "
                    "MLflow 3).",
                },
            ],
            "tasks": [
                {
                    "name": "fetch-source",
                    "when": [{"input": "$(params.GIT_URL)", "operator": "notin", "values": [""]}],
                    "taskRef": {
                        "resolver": "hub",
                        "params": [
                            {"name": "catalog", "value": "tekton-catalog-tasks"},
                            {"name": "type", "value": "artifact"},
                            {"name": "kind", "value": "task"},
                            {"name": "name", "value": "git-clone"},
                            {"name": "version", "value": "0.9"},
                        ],
                    },
                    "params": [
                        {"name": "url", "value": "$(params.GIT_URL)"},
                        {"name": "revision", "value": "$(params.GIT_REVISION)"},
                    ],
                    "workspaces": [{"name": "output", "workspace": "source"}],
                },
                {
                    "name": "build",
                    "runAfter": ["fetch-source"],
                    "taskRef": {"name": variant.name},
                    "params": passed_params(build_inputs),
                    "workspaces": [
                        {"name": "source", "workspace": "source"},
                        *[{"name": w["name"], "workspace": w["name"]} for w in dockerconfig],
                    ],
                },
                {
                    "name": "train",
                    "taskRef": {"name": RUNTIME.name},
                    "params": [
                        {"name": "IMAGE", "value": "$(tasks.build.results.IMAGE_URL)"},
                        {
                            "name": tekton_param("image_digest"),
                            "value": "$(tasks.build.results.IMAGE_DIGEST)",
                        },
                        *passed_params(train_inputs),
                        {"name": "MLFLOW_SECRET", "value": "$(params.MLFLOW_SECRET)"},
                    ],
                    "workspaces": [{"name": "source", "workspace": "source"}],
                },
            ],
        },
    }


def compute_resources(spec: StepSpec) -> dict[str, Any]:
    return spec.resources.kubernetes()


def pipeline_run_sample(options: TektonOptions) -> dict[str, Any]:
    variant = options.variant()
    restricted = variant.security.restricted and RUNTIME.security.restricted
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"generateName": "mlflow-build-and-train-"},
        "spec": {
            "pipelineRef": {"name": "mlflow-build-and-train"},
            "params": [
                {"name": "GIT_URL", "value": "https://github.com/mlflow/mlflow-example.git"},
                {"name": "GIT_REVISION", "value": "master"},
                {"name": "REGISTRY", "value": "registry.fuseml-registry"},
                {"name": "MLFLOW_ENTRYPOINT_ARGS", "value": "alpha=0.4,l1_ratio=0.1"},
            ],
            "workspaces": [
                {
                    "name": "source",
                    "volumeClaimTemplate": {
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}},
                        }
                    },
                },
                *(
                    []
                    if variant.engine in SPLIT_ENGINES
                    else [
                        {"name": "dockerconfig", "secret": {"secretName": "registry-credentials"}}
                    ]
                ),
            ],
            # Every pod of the run; the privileged variants keep their own user (no pod-wide
            # runAsNonRoot).
            "taskRunTemplate": {
                "podTemplate": pod_template(Security() if restricted else Security(run_as_user=0))
            },
            # Requests and limits per task (Task params cannot carry quantities): change them
            # here, per run.
            "taskRunSpecs": [
                {"pipelineTaskName": "build", "computeResources": compute_resources(BUILDER)},
                {"pipelineTaskName": "train", "computeResources": compute_resources(RUNTIME)},
            ],
        },
    }


def task_run_sample(task: dict[str, Any]) -> dict[str, Any]:
    name = task["metadata"]["name"]
    runtime = name == RUNTIME.name
    params = [{"name": "IMAGE", "value": "127.0.0.1:30500/mlflow/trainer:<tag>"}] if runtime else []
    step = task["spec"]["steps"][-1]  # the Kaniko variant: download, then build
    restricted = step["securityContext"] == RUNTIME.security.container_context()
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": {"generateName": f"{name}-run-"},
        "spec": {
            "taskRef": {"name": name},
            "params": params,
            "workspaces": [{"name": "source", "persistentVolumeClaim": {"claimName": "codeset"}}],
            "podTemplate": pod_template(Security() if restricted else Security(run_as_user=0)),
            "computeResources": step["computeResources"],
        },
    }


def files(options: TektonOptions) -> dict[str, Any]:
    """Catalog path -> object (YAML documents) or str (README)."""
    out: dict[str, Any] = {}
    builders = [builder_task(options, variant) for variant in BUILDER_VARIANTS]
    for task in (*builders, runtime_task(options)):
        name = task["metadata"]["name"]
        base = f"task/{name}/{options.version}"
        out[f"{base}/{name}.yaml"] = task
        out[f"{base}/samples/{name}-run.yaml"] = task_run_sample(task)
        out[f"{base}/README.md"] = task_readme(task)
    base = f"pipeline/mlflow-build-and-train/{options.version}"
    out[f"{base}/mlflow-build-and-train.yaml"] = pipeline(options)
    out[f"{base}/samples/mlflow-build-and-train-run.yaml"] = pipeline_run_sample(options)
    return out


def task_readme(task: dict[str, Any]) -> str:
    spec, meta = task["spec"], task["metadata"]
    lines = [
        f"# {meta['annotations']['tekton.dev/displayName']} (`{meta['name']}`)",
        "",
        spec["description"],
        "",
        "Generated by `mlflow-steps generate`; do not edit.",
        "",
        "## Install",
        "",
        "```sh",
        f"kubectl apply -f {meta['name']}.yaml",
        "```",
        "",
        "## Parameters",
        "",
        "| name | default | description |",
        "| --- | --- | --- |",
        *[
            f"| `{p['name']}` | `{p.get('default', '(required)')}` | {p['description']} |"
            for p in spec["params"]
        ],
        "",
        "## Results",
        "",
        *[f"- `{r['name']}`: {r['description']}" for r in spec["results"]],
        "",
        "## Workspaces",
        "",
        *[
            f"- `{w['name']}`{' (optional)' if w.get('optional') else ''}: {w['description']}"
            for w in spec["workspaces"]
        ],
        "",
    ]
    return "\n".join(lines)

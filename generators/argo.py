"""Step specs -> Argo Workflows objects, built with Hera: a ClusterWorkflowTemplate and a
WorkflowTemplate holding both templates, and an example Workflow chaining them by templateRef.

Parameters are kebab-case (`pull-registry`); they reach the step as FUSEML_<INPUT> env vars.
The codeset is an input artifact at /project; outputs are parameters read from files;
credentials come from Secrets (MLflow's by `envFrom`, the package indexes' netrc by
`secretKeyRef`), never literals or parameters.

One builder template per variant (`mlflow-builder`: no engine, non-root; `mlflow-builder-buildah`,
`mlflow-builder-kaniko`). Every template's pod: the container's securityContext from the spec
(the `restricted` Pod Security Standard, or the variant's privileges declared), the pod's own
where the variant is restricted; no service account token in the pod but in Argo's executor
containers (`automountServiceAccountToken: false` with `executor.serviceAccountName`: the wait
container reports output parameters through the Kubernetes API); requests and limits as
parameters, applied by `podSpecPatch` (a `{{...}}` is no quantity in `resources`).
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from hera.workflows import (
    DAG,
    Artifact,
    ClusterWorkflowTemplate,
    Container,
    ContainerNode,
    ContainerSet,
    EmptyDirVolume,
    Env,
    GitArtifact,
    Parameter,
    SecretEnv,
    Task,
    Workflow,
    WorkflowTemplate,
)
from hera.workflows import models as m

from mlflow_steps.components.spec import NONROOT_UID, Input, Security, StepSpec
from mlflow_steps.components.steps import (
    BASE_PULL_CONFIG,
    BASE_PULL_SECRET,
    BUILDAH_STORAGE_DRIVER,
    BUILDAH_STORE,
    BUILDAH_STORE_VOLUME,
    BUILDER,
    BUILDER_VARIANTS,
    DOWNLOADS,
    DOWNLOADS_VOLUME,
    EXECUTOR_SERVICE_ACCOUNT,
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
    builder_inputs,
    builder_variant,
    phase_args,
    resource_inputs,
)

from .naming import kebab

OUTPUT_DIR = "/tmp/mlflow-steps"
TEMPLATE_NAME = "mlflow-steps"


def inputs(spec: StepSpec, items: list[Input] | None = None) -> list[Parameter | Artifact]:
    """Input parameters (`items`, default the spec's engine inputs) and the codeset artifact."""
    params: list[Parameter | Artifact] = [
        Parameter(name=kebab(i.name), default=i.default, description=i.description)
        for i in (spec.engine_inputs if items is None else items)
    ]
    return [*params, Artifact(name="codeset", path=spec.workdir)]


def env(spec: StepSpec) -> list[Env]:
    return [
        Env(name=i.env, value=f"{{{{inputs.parameters.{kebab(i.name)}}}}}")
        for i in spec.engine_inputs
    ]


def outputs(spec: StepSpec) -> list[Parameter]:
    """One output parameter per string the step writes (an object output: one per field, so
    `source` gives `source-uri` and `source-digest`)."""
    return [
        Parameter(
            name=kebab(o.name),
            value_from=m.ValueFrom(path=f"{OUTPUT_DIR}/{kebab(o.name)}", default=""),
            description=o.description,
        )
        for o, _ in spec.string_outputs()
    ]


def output_args(spec: StepSpec) -> list[str]:
    args: list[str] = []
    for o, flag in spec.string_outputs():
        args += [flag, f"{OUTPUT_DIR}/{kebab(o.name)}"]
    return args


def pod_inputs(spec: StepSpec) -> list[Input]:
    """The pod's parameters: requests and limits, and the executor's service account."""
    return [*resource_inputs(spec), EXECUTOR_SERVICE_ACCOUNT]


def pod_spec_patch(spec: StepSpec, container: str = "main") -> str:
    """Requests and limits from parameters: Argo substitutes them into this patch of the
    `container` (a parameter in `resources` itself is refused: it is no Kubernetes quantity)."""
    value = {
        item.name: f"{{{{inputs.parameters.{kebab(item.name)}}}}}" for item in resource_inputs(spec)
    }
    patch = {
        "containers": [
            {
                "name": container,
                "resources": {
                    "requests": {"cpu": value["cpu_request"], "memory": value["memory_request"]},
                    "limits": {"cpu": value["cpu_limit"], "memory": value["memory_limit"]},
                },
            }
        ]
    }
    return json.dumps(patch, sort_keys=False)


def pod_settings(spec: StepSpec, security: Security) -> dict[str, Any]:
    """Template fields for the pod: securityContext (container, and pod where restricted), no
    token for the step's container, the executor's account, the resources' patch."""
    settings: dict[str, Any] = {
        "security_context": m.SecurityContext.model_validate(security.container_context()),
        "automount_service_account_token": False,
        "executor": m.ExecutorConfig(
            service_account_name=f"{{{{inputs.parameters.{kebab(EXECUTOR_SERVICE_ACCOUNT.name)}}}}}"
        ),
        "pod_spec_patch": pod_spec_patch(spec),
    }
    # The pod's own: the restricted one, or the variant's root declared (it replaces the
    # workflow's restricted `securityContext`).
    settings["pod_security_context"] = (
        restricted_pod()
        if security.restricted
        else m.PodSecurityContext(run_as_non_root=False, run_as_user=0)
    )
    return settings


def restricted_pod() -> m.PodSecurityContext:
    """The pod's securityContext under the `restricted` profile; `fsGroup` makes fresh volumes
    writable by the non-root user."""
    return m.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=NONROOT_UID,
        run_as_group=NONROOT_UID,
        fs_group=NONROOT_UID,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


# The service account the pods run as: no role, no token (see rbac()).
POD_SERVICE_ACCOUNT = "mlflow-steps"


def workflow_spec() -> dict[str, Any]:
    """Workflow-level settings: restricted pods by default (each template also sets its own:
    templateRef callers do not inherit these), a service account other than `default`."""
    return {"security_context": restricted_pod(), "service_account_name": POD_SERVICE_ACCOUNT}


def rbac() -> str:
    """The accounts the templates name: `mlflow-steps` for the pods (no role; its token is never
    mounted) and the executor's, with the least the executor needs (Argo >= 3.4:
    workflowtaskresults create/patch, docs/workflow-rbac.md) and the token Secret Argo mounts
    into the executor containers (`<name>.service-account-token`)."""
    executor = EXECUTOR_SERVICE_ACCOUNT.default
    documents = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": POD_SERVICE_ACCOUNT},
            "automountServiceAccountToken": False,
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": executor}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": f"{executor}.service-account-token",
                "annotations": {"kubernetes.io/service-account.name": executor},
            },
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": executor},
            "rules": [
                {
                    "apiGroups": ["argoproj.io"],
                    "resources": ["workflowtaskresults"],
                    "verbs": ["create", "patch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": executor},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": executor},
            "subjects": [{"kind": "ServiceAccount", "name": executor}],
        },
    ]
    return yaml.safe_dump_all(documents, sort_keys=False)


def index_credentials() -> SecretEnv:
    """The index credentials: one key of the Secret `index-secret` names, as an env var."""
    return SecretEnv(
        name=NETRC_ENV,
        secret_name=f"{{{{inputs.parameters.{kebab(INDEX_SECRET.name)}}}}}",
        secret_key=INDEX_SECRET_KEY,
        optional=True,
    )


def builder_container(image: str = "", build_engine: str = "none") -> Container | ContainerSet:
    """The builder template of one variant (`build_engine`: none, buildah or kaniko); `image`
    replaces the project's builder image of that variant. Kaniko's is a container set
    (`split_builder`)."""
    variant = builder_variant(build_engine)
    if variant.engine in SPLIT_ENGINES:
        return split_builder(image, variant.engine)
    container_env = env(BUILDER)
    if variant.engine == "buildah":
        name = kebab(BUILDAH_STORAGE_DRIVER.name)
        container_env.append(Env(name="STORAGE_DRIVER", value=f"{{{{inputs.parameters.{name}}}}}"))
    return Container(
        name=variant.name,
        image=variant.image(image),
        command=list(BUILDER.command[:2]),
        args=[BUILDER.workdir, *output_args(BUILDER)],
        working_dir=BUILDER.workdir,
        inputs=inputs(BUILDER, builder_inputs(variant.engine) + pod_inputs(BUILDER)),
        outputs=outputs(BUILDER),
        env=[*container_env, Env(name="FUSEML_ENGINE", value=variant.engine), index_credentials()],
        volumes=builder_volumes(variant.engine),
        **pod_settings(BUILDER, variant.security),
    )


def builder_volumes(engine: str) -> list[EmptyDirVolume] | None:
    """buildah's store on an emptyDir (overlay cannot sit on the container's overlay root);
    the engine-less builder's /dev/shm in memory (`steps.SHM`)."""
    if engine == "buildah":
        return [EmptyDirVolume(name=BUILDAH_STORE_VOLUME, mount_path=BUILDAH_STORE)]
    if engine in IN_MEMORY_STAGING:
        return [EmptyDirVolume(name=SHM_VOLUME, mount_path=SHM, medium="Memory")]
    return None


CODESET_VOLUME = "codeset"


REGISTRY_VOLUME = "registry-secret"
BASE_PULL_VOLUME = "base-pull-secret"


def secret_volume(name: str, item: Input) -> m.Volume:
    """A volume of the Secret the parameter `item` names (optional: absent, it is empty)."""
    secret_name = f"{{{{inputs.parameters.{kebab(item.name)}}}}}"
    return m.Volume(name=name, secret=m.SecretVolumeSource(secret_name=secret_name, optional=True))


def split_builder(image: str, build_engine: str) -> ContainerSet:
    """A builder in three containers of one pod (an Argo container set, components/builder/
    backends/split.py): `download` holds the index Secret, the index settings and the registry
    Secret and only downloads into an emptyDir; `build` (Kaniko, whose RUNs are not isolated
    from its container) gets none of them, only the optional base-pull Secret, and writes an
    OCI image layout; `main` (the same image, Kaniko not running) holds the registry Secret,
    pushes the layout and writes the outputs (Argo reads a container set's outputs from
    `main`). The codeset artifact is on a volume every container mounts (Argo loads input
    artifacts for `main` only otherwise)."""
    variant = builder_variant(build_engine)
    index_env = {BUILDER.input(name).env for name in INDEX_INPUTS}
    settings = pod_settings(BUILDER, variant.security)
    settings["pod_spec_patch"] = pod_spec_patch(BUILDER, "build")
    container_security = settings.pop("security_context")
    downloads = m.VolumeMount(name=DOWNLOADS_VOLUME, mount_path=DOWNLOADS)
    job = m.VolumeMount(name=JOB_VOLUME, mount_path=JOB)  # never into `build`: tag and SBOM
    registry = m.VolumeMount(name=REGISTRY_VOLUME, mount_path=REGISTRY_CONFIG, read_only=True)
    base_pull = m.VolumeMount(name=BASE_PULL_VOLUME, mount_path=BASE_PULL_CONFIG, read_only=True)
    engine = Env(name="FUSEML_ENGINE", value=variant.engine)
    r = BUILDER.resources
    # Static: the pod's patch sets `build`'s requests and limits from the parameters.
    static = m.ResourceRequirements(
        requests={"cpu": r.cpu_request, "memory": r.memory_request},
        limits={"cpu": r.cpu_limit, "memory": r.memory_limit},
    )
    common: dict[str, Any] = {
        "image": variant.image(image),
        "command": list(BUILDER.command[:2]),
        "working_dir": BUILDER.workdir,
        "security_context": container_security,
    }
    no_index = [e for e in env(BUILDER) if e.name not in index_env] + [engine]
    download = ContainerNode(
        name="download",
        args=[BUILDER.workdir, *phase_args("download")],
        env=[*env(BUILDER), engine, index_credentials(), docker_config(REGISTRY_CONFIG)],
        resources=static,
        volume_mounts=[downloads, job, registry],
        **common,
    )
    build = ContainerNode(
        name="build",
        dependencies=["download"],
        args=[BUILDER.workdir, *phase_args("install")],
        env=[*no_index, docker_config(BASE_PULL_CONFIG)],
        volume_mounts=[downloads, base_pull],
        **common,
    )
    push = ContainerNode(
        name="main",
        dependencies=["build"],
        args=[BUILDER.workdir, *phase_args("push"), *output_args(BUILDER)],
        env=[*no_index, docker_config(REGISTRY_CONFIG)],
        resources=static,
        volume_mounts=[downloads, job, registry],
        **common,
    )
    return ContainerSet(
        name=variant.name,
        inputs=inputs(BUILDER, builder_inputs(variant.engine) + pod_inputs(BUILDER)),
        outputs=outputs(BUILDER),
        volumes=[
            m.Volume(name=DOWNLOADS_VOLUME, empty_dir=m.EmptyDirVolumeSource()),
            m.Volume(name=JOB_VOLUME, empty_dir=m.EmptyDirVolumeSource()),
            m.Volume(name=CODESET_VOLUME, empty_dir=m.EmptyDirVolumeSource()),
            secret_volume(REGISTRY_VOLUME, REGISTRY_SECRET),
            secret_volume(BASE_PULL_VOLUME, BASE_PULL_SECRET),
        ],
        volume_mounts=[m.VolumeMount(name=CODESET_VOLUME, mount_path=BUILDER.workdir)],
        containers=[download, build, push],
        **settings,
    )


def docker_config(folder: str) -> Env:
    return Env(name="DOCKER_CONFIG", value=folder)


def runtime_container() -> Container:
    return Container(
        name=RUNTIME.name,
        image="{{inputs.parameters.image}}",
        command=list(RUNTIME.command[:3]),
        args=[RUNTIME.workdir, *output_args(RUNTIME)],
        working_dir=RUNTIME.workdir,
        inputs=[
            Parameter(name="image", description="The environment image: mlflow-builder's image."),
            Parameter(
                name="mlflow-secret",
                default="mlflow-credentials",
                description="Secret whose keys become env vars: " + ", ".join(RUNTIME.secret_env),
            ),
            *inputs(RUNTIME, [*RUNTIME.engine_inputs, *pod_inputs(RUNTIME)]),
        ],
        outputs=outputs(RUNTIME),
        env=[*env(RUNTIME), Env(name=IMAGE_ENV, value="{{inputs.parameters.image}}")],
        env_from=[
            m.EnvFromSource(
                secret_ref=m.SecretEnvSource(
                    name="{{inputs.parameters.mlflow-secret}}", optional=True
                )
            )
        ],
        **pod_settings(RUNTIME, RUNTIME.security),
    )


def templates(image: str = "", build_engine: str = "none") -> list[Any]:
    """Every builder variant's template (`image` replaces the one of `build_engine`), then the
    runtime's."""
    builders = [
        builder_container(image if v.engine == build_engine else "", v.engine)
        for v in BUILDER_VARIANTS
    ]
    return [*builders, runtime_container()]


def cluster_workflow_template(image: str = "", build_engine: str = "none") -> dict[str, Any]:
    return ClusterWorkflowTemplate(
        name=TEMPLATE_NAME, templates=templates(image, build_engine), **workflow_spec()
    ).to_dict()


def workflow_template(image: str = "", build_engine: str = "none") -> dict[str, Any]:
    return WorkflowTemplate(
        name=TEMPLATE_NAME, templates=templates(image, build_engine), **workflow_spec()
    ).to_dict()


def example_workflow(build_engine: str = "none") -> dict[str, Any]:
    """build -> train, both by templateRef into the ClusterWorkflowTemplate."""
    codeset = GitArtifact(
        name="codeset",
        repo="{{workflow.parameters.git-url}}",
        revision="{{workflow.parameters.git-revision}}",
    )
    # Every input of both templates is a Workflow parameter (`argo submit -p base-image=...`);
    # an input both have (verbose) is one parameter for both.
    variant = builder_variant(build_engine)
    build_inputs, train_inputs = builder_inputs(build_engine), list(RUNTIME.inputs)
    # image_digest comes from the build, not from a Workflow parameter.
    train_inputs = [i for i in train_inputs if i.name != "image_digest"]
    example_values = {
        "registry": "registry.fuseml-registry",
        "mlflow_entrypoint_args": "alpha=0.4,l1_ratio=0.1",
    }
    declared: dict[str, Parameter] = {}
    for item in build_inputs + train_inputs:
        value = example_values.get(item.name, item.default)
        declared.setdefault(kebab(item.name), Parameter(name=kebab(item.name), value=value))

    def ref(template: str) -> m.TemplateRef:
        return m.TemplateRef(name=TEMPLATE_NAME, template=template, cluster_scope=True)

    def passed(items: list[Input]) -> list[Parameter]:
        return [
            Parameter(name=kebab(i.name), value=f"{{{{workflow.parameters.{kebab(i.name)}}}}}")
            for i in items
        ]

    with (
        Workflow(
            generate_name="mlflow-build-and-train-",
            entrypoint="build-and-train",
            arguments=[
                Parameter(name="git-url", value="https://github.com/mlflow/mlflow-example.git"),
                Parameter(name="git-revision", value="master"),
                *declared.values(),
            ],
            **workflow_spec(),
        ) as workflow,
        DAG(name="build-and-train"),
    ):
        build = Task(
            name="build",
            template_ref=ref(variant.name),
            arguments=[*passed(build_inputs), codeset],
        )
        train = Task(
            name="train",
            template_ref=ref(RUNTIME.name),
            arguments=[
                Parameter(name="image", value="{{tasks.build.outputs.parameters.image}}"),
                Parameter(
                    name=kebab("image_digest"), value="{{tasks.build.outputs.parameters.digest}}"
                ),
                *passed(train_inputs),
                codeset,
            ],
        )
        build >> train
    return workflow.to_dict()


def files(image: str = "", build_engine: str = "none") -> dict[str, Any]:
    return {
        "mlflow-steps-cluster-workflow-template.yaml": cluster_workflow_template(
            image, build_engine
        ),
        "mlflow-steps-workflow-template.yaml": workflow_template(image, build_engine),
        "examples/mlflow-build-and-train-workflow.yaml": example_workflow(build_engine),
        "mlflow-steps-rbac.yaml": rbac(),
    }

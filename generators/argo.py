"""Step specs -> Argo Workflows objects, built with Hera: a ClusterWorkflowTemplate and a
WorkflowTemplate holding both templates, and an example Workflow chaining them by templateRef.

Parameters are kebab-case (`pull-registry`); they reach the step as FUSEML_<INPUT> env vars.
The codeset is an input artifact at /project; outputs are parameters read from files;
credentials come from Secrets (MLflow's by `envFrom`, the package indexes' netrc by
`secretKeyRef`), never literals or parameters.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import (
    DAG,
    Artifact,
    ClusterWorkflowTemplate,
    Container,
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

from mlflow_steps.components.spec import Input, StepSpec
from mlflow_steps.components.steps import (
    BUILDAH_STORAGE_DRIVER,
    BUILDAH_STORE,
    BUILDAH_STORE_VOLUME,
    BUILDER,
    IMAGE_ENV,
    INDEX_SECRET,
    INDEX_SECRET_KEY,
    NETRC_ENV,
    RUNTIME,
    builder_image,
    builder_inputs,
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
    return [
        Parameter(
            name=kebab(o.name),
            value_from=m.ValueFrom(path=f"{OUTPUT_DIR}/{kebab(o.name)}", default=""),
            description=o.description,
        )
        for o in spec.outputs
    ]


def output_args(spec: StepSpec) -> list[str]:
    args: list[str] = []
    for o in spec.outputs:
        args += [spec.output_flags[o.name], f"{OUTPUT_DIR}/{kebab(o.name)}"]
    return args


def index_credentials() -> SecretEnv:
    """The index credentials: one key of the Secret `index-secret` names, as an env var."""
    return SecretEnv(
        name=NETRC_ENV,
        secret_name=f"{{{{inputs.parameters.{kebab(INDEX_SECRET.name)}}}}}",
        secret_key=INDEX_SECRET_KEY,
        optional=True,
    )


def builder_container(image: str = "", build_engine: str = "kaniko") -> Container:
    security = (
        m.SecurityContext(run_as_user=0)
        if build_engine == "kaniko"
        else m.SecurityContext(privileged=True)
    )
    container_env = env(BUILDER)
    if build_engine == "buildah":
        name = kebab(BUILDAH_STORAGE_DRIVER.name)
        container_env.append(Env(name="STORAGE_DRIVER", value=f"{{{{inputs.parameters.{name}}}}}"))
    return Container(
        name=BUILDER.name,
        image=image or builder_image(build_engine),
        command=list(BUILDER.command[:2]),
        args=[BUILDER.workdir, *output_args(BUILDER)],
        working_dir=BUILDER.workdir,
        inputs=inputs(BUILDER, builder_inputs(build_engine)),
        outputs=outputs(BUILDER),
        env=[*container_env, Env(name="FUSEML_ENGINE", value=build_engine), index_credentials()],
        security_context=security,
        # buildah's store on an emptyDir (overlay cannot sit on the container's overlay root).
        volumes=[EmptyDirVolume(name=BUILDAH_STORE_VOLUME, mount_path=BUILDAH_STORE)]
        if build_engine == "buildah"
        else None,
    )


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
            *inputs(RUNTIME),
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
    )


def templates(image: str = "", build_engine: str = "kaniko") -> list[Any]:
    return [builder_container(image, build_engine), runtime_container()]


def cluster_workflow_template(image: str = "", build_engine: str = "kaniko") -> dict[str, Any]:
    return ClusterWorkflowTemplate(
        name=TEMPLATE_NAME, templates=templates(image, build_engine)
    ).to_dict()


def workflow_template(image: str = "", build_engine: str = "kaniko") -> dict[str, Any]:
    return WorkflowTemplate(name=TEMPLATE_NAME, templates=templates(image, build_engine)).to_dict()


def example_workflow(build_engine: str = "kaniko") -> dict[str, Any]:
    """build -> train, both by templateRef into the ClusterWorkflowTemplate."""
    codeset = GitArtifact(
        name="codeset",
        repo="{{workflow.parameters.git-url}}",
        revision="{{workflow.parameters.git-revision}}",
    )
    # Every input of both templates is a Workflow parameter (`argo submit -p base-image=...`);
    # an input both have (verbose) is one parameter for both.
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
        ) as workflow,
        DAG(name="build-and-train"),
    ):
        build = Task(
            name="build",
            template_ref=ref(BUILDER.name),
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


def files(image: str = "", build_engine: str = "kaniko") -> dict[str, Any]:
    return {
        "mlflow-steps-cluster-workflow-template.yaml": cluster_workflow_template(
            image, build_engine
        ),
        "mlflow-steps-workflow-template.yaml": workflow_template(image, build_engine),
        "examples/mlflow-build-and-train-workflow.yaml": example_workflow(build_engine),
    }

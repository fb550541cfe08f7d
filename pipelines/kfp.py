"""Kubeflow Pipelines components and the build -> train pipeline, for Python pipelines:

    from mlflow_steps.pipelines.kfp import mlflow_builder, mlflow_runtime, build_and_train

The components are loaded from the component specs generated from the step specs.
Credentials come from Secrets through kfp-kubernetes, never from parameters: the pipeline hands
the build task the key `netrc` of the Secret named by `index_secret` (default
`index-credentials`, optional) as MLFLOW_STEPS_INDEX_NETRC. MLflow credentials: attach a Secret
to the train task the same way
(`kubernetes.use_secret_as_env(train, secret_name=..., secret_key_to_env={...})`).

Both tasks run as the non-root user 65532 (`kubernetes.set_security_context`: the KFP backend
adds the rest of the `restricted` profile: no privilege escalation, every capability dropped,
RuntimeDefault seccomp); the privileged builder variants (buildah, kaniko) keep their root.
Requests and limits are pipeline parameters (`builder_cpu_request`, `trainer_memory_limit`...).
"""

# No `from __future__ import annotations`: kfp reads the pipeline's annotations at run time.
from kfp import dsl, kubernetes
from kfp.components import load_component_from_text

from mlflow_steps.components.spec import Resources, Security
from mlflow_steps.components.steps import (
    BASE_PULL_CONFIG,
    BASE_PULL_SECRET,
    BUILDER,
    IN_MEMORY_STAGING,
    INDEX_SECRET,
    INDEX_SECRET_KEY,
    NETRC_ENV,
    REGISTRY_CONFIG,
    REGISTRY_SECRET,
    RUNTIME,
    SHM,
    SHM_VOLUME,
    SPLIT_ENGINES,
    builder_variant,
)
from mlflow_steps.generators.kfp import component_texts


def make_components(image: str = "", build_engine: str = "none"):
    texts = component_texts(image, build_engine)
    return (
        load_component_from_text(texts[builder_variant(build_engine).name.replace("-", "_")]),
        load_component_from_text(texts["mlflow_runtime"]),
    )


def make_split_components(image: str = "", build_engine: str = "kaniko"):
    """A split variant's download and push components (Kaniko's), or (None, None)."""
    if build_engine not in SPLIT_ENGINES:
        return None, None
    texts = component_texts(image, build_engine)
    name = builder_variant(build_engine).name.replace("-", "_")
    return (
        load_component_from_text(texts[name + "_download"]),
        load_component_from_text(texts[name + "_push"]),
    )


def make_download_component(image: str = "", build_engine: str = "kaniko"):
    """A split variant's download component (Kaniko's), or None for the others."""
    return make_split_components(image, build_engine)[0]


def mount_docker_config(task, secret_name, folder: str) -> None:
    """The Secret `secret_name` (its key `config.json`, optional) at `folder`, and
    DOCKER_CONFIG naming it: registry credentials for this task only."""
    kubernetes.use_secret_as_volume(task, secret_name=secret_name, mount_path=folder, optional=True)
    task.set_env_variable("DOCKER_CONFIG", folder)


def apply_pod(task, security: Security, cpu_request, memory_request, cpu_limit, memory_limit):
    """The container's user (restricted: non-root 65532) and its requests and limits."""
    if security.restricted:
        kubernetes.set_security_context(
            task,
            run_as_user=security.run_as_user,
            run_as_group=security.run_as_user,
            run_as_non_root=True,
        )
    task.set_cpu_request(cpu_request).set_memory_request(memory_request)
    task.set_cpu_limit(cpu_limit).set_memory_limit(memory_limit)


def make_pipeline(image: str = "", build_engine: str = "none"):
    builder, runtime = make_components(image, build_engine)
    download_component, push_component = make_split_components(image, build_engine)
    variant = builder_variant(build_engine)
    b: Resources = BUILDER.resources
    t: Resources = RUNTIME.resources

    @dsl.pipeline(
        name="mlflow-build-and-train",
        description="Build an MLflow codeset's environment image, then run an entry point in it.",
    )
    def build_and_train(
        codeset_uri: str,
        registry: str = "registry.fuseml-registry",
        pull_registry: str = "127.0.0.1:30500",
        mlflow_entrypoint: str = "main",
        mlflow_entrypoint_args: str = "",
        context: str = ".",
        index_secret: str = INDEX_SECRET.default,
        registry_secret: str = REGISTRY_SECRET.default,
        base_pull_secret: str = BASE_PULL_SECRET.default,
        builder_cpu_request: str = b.cpu_request,
        builder_memory_request: str = b.memory_request,
        builder_cpu_limit: str = b.cpu_limit,
        builder_memory_limit: str = b.memory_limit,
        trainer_cpu_request: str = t.cpu_request,
        trainer_memory_request: str = t.memory_request,
        trainer_cpu_limit: str = t.cpu_limit,
        trainer_memory_limit: str = t.memory_limit,
    ) -> str:
        codeset = dsl.importer(
            artifact_uri=codeset_uri, artifact_class=dsl.Artifact, reimport=False
        )
        place = {"registry": registry, "pull_registry": pull_registry, "context": context}
        if download_component is None:
            build = builder(codeset=codeset.output, **place)
            holder = pushed = build  # the index Secret's container
            tasks = [build]
        else:  # Kaniko: the index Secret for the download component only (split.py)
            holder = download_component(codeset=codeset.output, **place)
            downloads = holder.outputs["downloads"]
            build = builder(codeset=codeset.output, downloads=downloads, **place)
            pushed = push_component(
                codeset=codeset.output,
                downloads=downloads,
                layout=build.outputs["layout"],
                **place,
            )
            # The registry credentials: the download and push tasks only; the build task (the
            # codeset's code runs there) gets the read-only base-pull Secret, if any.
            for task in (holder, pushed):
                mount_docker_config(task, registry_secret, REGISTRY_CONFIG)
            mount_docker_config(build, base_pull_secret, BASE_PULL_CONFIG)
            tasks = [holder, build, pushed]
        if variant.engine in IN_MEMORY_STAGING:  # the staged tree in memory (steps.SHM)
            kubernetes.empty_dir_mount(build, volume_name=SHM_VOLUME, mount_path=SHM,
                                       medium="Memory")  # fmt: skip
        kubernetes.use_secret_as_env(
            holder,
            secret_name=index_secret,
            secret_key_to_env={INDEX_SECRET_KEY: NETRC_ENV},
            optional=True,
        )
        for task in tasks:
            apply_pod(
                task,
                variant.security,
                builder_cpu_request,
                builder_memory_request,
                builder_cpu_limit,
                builder_memory_limit,
            )
        train = runtime(
            codeset=codeset.output,
            context=context,
            mlflow_entrypoint=mlflow_entrypoint,
            mlflow_entrypoint_args=mlflow_entrypoint_args,
            image_digest=pushed.outputs["digest"],
        )
        train.set_container_image(pushed.outputs["image"])
        apply_pod(
            train,
            RUNTIME.security,
            trainer_cpu_request,
            trainer_memory_request,
            trainer_cpu_limit,
            trainer_memory_limit,
        )
        return train.outputs["model_url"]

    return build_and_train


mlflow_builder, mlflow_runtime = make_components()
build_and_train = make_pipeline()

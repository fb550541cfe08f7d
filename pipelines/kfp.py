"""Kubeflow Pipelines components and the build -> train pipeline, for Python pipelines:

    from mlflow_steps.pipelines.kfp import mlflow_builder, mlflow_runtime, build_and_train

The components are loaded from the component specs generated from the step specs.
Credentials come from Secrets through kfp-kubernetes, never from parameters: the pipeline hands
the build task the key `netrc` of the Secret named by `index_secret` (default
`index-credentials`, optional) as MLFLOW_STEPS_INDEX_NETRC. MLflow credentials: attach a Secret
to the train task the same way
(`kubernetes.use_secret_as_env(train, secret_name=..., secret_key_to_env={...})`).
"""

# No `from __future__ import annotations`: kfp reads the pipeline's annotations at run time.
from kfp import dsl, kubernetes
from kfp.components import load_component_from_text

from mlflow_steps.components.steps import INDEX_SECRET, INDEX_SECRET_KEY, NETRC_ENV
from mlflow_steps.generators.kfp import component_texts


def make_components(image: str = "", build_engine: str = "kaniko"):
    texts = component_texts(image, build_engine)
    return (
        load_component_from_text(texts["mlflow_builder"]),
        load_component_from_text(texts["mlflow_runtime"]),
    )


def make_pipeline(image: str = "", build_engine: str = "kaniko"):
    builder, runtime = make_components(image, build_engine)

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
    ) -> str:
        codeset = dsl.importer(
            artifact_uri=codeset_uri, artifact_class=dsl.Artifact, reimport=False
        )
        build = builder(
            codeset=codeset.output,
            registry=registry,
            pull_registry=pull_registry,
            context=context,
        )
        kubernetes.use_secret_as_env(
            build,
            secret_name=index_secret,
            secret_key_to_env={INDEX_SECRET_KEY: NETRC_ENV},
            optional=True,
        )
        train = runtime(
            codeset=codeset.output,
            context=context,
            mlflow_entrypoint=mlflow_entrypoint,
            mlflow_entrypoint_args=mlflow_entrypoint_args,
            image_digest=build.outputs["digest"],
        )
        train.set_container_image(build.outputs["image"])
        return train.outputs["model_url"]

    return build_and_train


mlflow_builder, mlflow_runtime = make_components()
build_and_train = make_pipeline()

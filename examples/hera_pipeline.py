"""A Python pipeline with the Hera components: build the environment image, then train.

python examples/hera_pipeline.py > workflow.yaml && argo submit workflow.yaml
"""

from hera.workflows import DAG, GitArtifact, Parameter, Workflow

from mlflow_steps.pipelines.hera import mlflow_builder, mlflow_runtime


def make_workflow() -> Workflow:
    codeset = GitArtifact(
        name="codeset", repo="https://github.com/mlflow/mlflow-example.git", revision="master"
    )
    with Workflow(generate_name="mlflow-hera-", entrypoint="main") as workflow, DAG(name="main"):
        build = mlflow_builder(
            name="build",
            arguments=[Parameter(name="registry", value="registry.fuseml-registry"), codeset],
        )
        train = mlflow_runtime(
            name="train",
            arguments=[
                Parameter(name="image", value=build.get_parameter("image").value),
                Parameter(name="mlflow-entrypoint-args", value="alpha=0.5"),
                codeset,
            ],
        )
        build >> train
    return workflow


if __name__ == "__main__":
    print(make_workflow().to_yaml())

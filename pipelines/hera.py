"""Hera components, for pipelines written in Python:

    from hera.workflows import DAG, Workflow
    from mlflow_steps.pipelines.hera import mlflow_builder, mlflow_runtime

    with Workflow(generate_name="train-", entrypoint="main") as w:
        with DAG(name="main"):
            build = mlflow_builder(arguments={"codeset": codeset_artifact})
            train = mlflow_runtime(arguments={"image": build.get_parameter("image"), ...})
            build >> train

Both are Hera `Container` templates generated from the step specs; Hera adds them to the
Workflow where they are used. `mlflow_builder` is the unprivileged builder (no engine, non-root,
the `restricted` Pod Security Standard); `builder_container(build_engine="buildah")` or
`"kaniko"` give the privileged variants.
"""

from __future__ import annotations

from mlflow_steps.generators.argo import builder_container, runtime_container

mlflow_builder = builder_container()
mlflow_runtime = runtime_container()

__all__ = ["builder_container", "mlflow_builder", "mlflow_runtime", "runtime_container"]

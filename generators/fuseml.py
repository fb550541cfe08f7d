"""Step specs -> the two FuseML workflows of the seed page: `build_mlflow_env` and
`train_mlflow_model`.

FuseML passes each step input `x_y` as FUSEML_X_Y and mounts the codeset at /project. The seed
page names the builder's output `mlflow-runtime` in train_mlflow_model but references it as
`steps.builder.outputs.image`; here it is named `image`, as referenced.

Credentials are never step inputs: the trainer takes MLflow's from the `mlflow-tracking` and
`mlflow-store` extensions, and the builder takes the package indexes' from the `package-index`
extension, whose record in the Extension Registry holds MLFLOW_STEPS_INDEX_NETRC (netrc text);
FuseML passes an extension record's configuration to the step as environment variables.
"""

from __future__ import annotations

from typing import Any

from mlflow_steps.components.steps import BUILDER, builder_image

CODESET = "mlflow-codeset"
CONTEXT = BUILDER.input("context")


def codeset_input() -> list[dict[str, Any]]:
    """The codeset, and the folder of the MLproject in it (the steps' `context` input)."""
    return [
        {"name": CODESET, "description": "an MLFlow compatible codeset", "type": "codeset"},
        {
            "name": CONTEXT.name,
            "description": CONTEXT.description,
            "type": "string",
            "default": CONTEXT.default,
        },
    ]


def context_input() -> dict[str, Any]:
    """FuseML passes it to the step as FUSEML_CONTEXT."""
    return {"name": CONTEXT.name, "value": f"{{{{ inputs.{CONTEXT.name} }}}}"}


def codeset_mount() -> dict[str, Any]:
    return {
        "name": CODESET,
        "codeset": {"name": f"{{{{ inputs.{CODESET} }}}}", "path": BUILDER.workdir},
    }


# The Extension Registry record whose configuration holds MLFLOW_STEPS_INDEX_NETRC for the builder.
INDEX_EXTENSION = {
    "name": "package-index",
    "product": "pypi",
    "service_resource": "package-index",
}


def builder_step(image: str, output: str) -> dict[str, Any]:
    return {
        "name": "builder",
        "image": image,
        "inputs": [codeset_mount(), context_input()],
        "outputs": [{"name": output}],
        # The indexes' credentials (MLFLOW_STEPS_INDEX_NETRC), as the trainer takes MLflow's.
        "extensions": [dict(INDEX_EXTENSION)],
    }


def build_mlflow_env(image: str) -> dict[str, Any]:
    return {
        "name": "build_mlflow_env",
        "description": "Example workflow that builds a MLflow environment container image\n"
        'out of an MLflow compatible codeset."\n',
        "inputs": codeset_input(),
        "outputs": [
            {
                "name": "mlflow-runtime-image",
                "description": (
                    "The location of the built MLflow runtime environment container image."
                ),
                "type": "string",
            }
        ],
        "steps": [builder_step(image, "mlflow-runtime-image")],
    }


def train_mlflow_model(image: str) -> dict[str, Any]:
    return {
        "name": "train_mlflow_model",
        "description": "Example workflow that builds a MLflow environment container image\n"
        "out of an MLflow compatible codeset and then uses it to run the MLflow\n"
        'code in the codeset to train and save a ML model."\n',
        "inputs": codeset_input(),
        "outputs": [
            {
                "name": "model-url",
                "description": "The URL where the model is saved in the MLflow artifact store.",
                "type": "string",
            }
        ],
        "steps": [
            builder_step(image, "image"),
            {
                "name": "trainer",
                "image": "{{ steps.builder.outputs.image }}",
                "inputs": [codeset_mount(), context_input()],
                "outputs": [{"name": "model-url"}],
                "extensions": [
                    {
                        "name": "mlflow-tracking",
                        "product": "mlflow",
                        "service_resource": "mlflow-tracking",
                    },
                    {"name": "mlflow-store", "product": "mlflow", "service_resource": "s3"},
                ],
            },
        ],
    }


def files(image: str = "", build_engine: str = "none") -> dict[str, Any]:
    """FuseML's workflow format has no pod settings: the builder image's own USER decides (the
    default, unprivileged image runs as 65532, non-root)."""
    image = image or builder_image(build_engine)
    return {
        "build_mlflow_env.yaml": build_mlflow_env(image),
        "train_mlflow_model.yaml": train_mlflow_model(image),
    }

"""The runtime step's whole spec, read on the host by the generators (this file never ships in
an image). Its inputs come from the in-image module's own table (`inputs.INPUTS`), so the
module and every engine's YAML cannot drift apart."""

from ..spec import Input, Output, Resources, StepSpec
from .cli import MLFLOW_ENV
from .inputs import BOOLEAN_INPUTS, INPUTS

RUNTIME = StepSpec(
    name="mlflow-runtime",
    display_name="MLflow runtime (trainer)",
    description=(
        "Runs an MLproject entry point in the environment image built by mlflow-builder, against "
        "an MLflow tracking server and artifact store, and outputs the URL of the artifact "
        "(the model) it logged."
    ),
    inputs=tuple(
        Input(name, description, default, "boolean" if name in BOOLEAN_INPUTS else "string")
        for name, default, description in INPUTS
    ),
    outputs=(
        Output("model_url", "URL of the artifact at mlflow_artifact_path (the model)."),
        Output(
            "model_uri",
            "models:/<model_id> of the logged model named mlflow_artifact_path (MLflow 3); "
            "empty with MLflow < 3, which has no logged models.",
        ),
    ),
    image=None,
    command=("python", "-m", "mlflow_steps_runtime", "/project"),
    output_flags={"model_url": "--output", "model_uri": "--model-uri-output"},
    secret_env=tuple(MLFLOW_ENV),
    # Training: more than the builder by default; every engine lets a run change them.
    resources=Resources("1", "2Gi", "4", "8Gi"),
)

"""Log a tiny pyfunc model, `model`, that answers each input row with the message it was
trained with (and says which `six` the environment pinned)."""

import sys

import mlflow
import six


class Echo(mlflow.pyfunc.PythonModel):
    def __init__(self, message):
        self.message = message

    def predict(self, context, model_input, params=None):
        return [self.message for _ in range(len(model_input))]


if __name__ == "__main__":
    message = sys.argv[1]
    print(f"message {message!r}, six {six.__version__}")
    # In the run the step created (MLFLOW_RUN_ID): MLflow 3 links a model to a run only when
    # one is active. Requirements named, not inferred (inference loads the model again).
    with mlflow.start_run():
        mlflow.pyfunc.log_model(
            name="model",
            python_model=Echo(message),
            pip_requirements=["mlflow", "six==1.16.0", "pandas>=2"],
        )

"""mlflow-steps: MLflow projects as reusable builder and runtime workflow steps."""

__version__ = "0.1.0"

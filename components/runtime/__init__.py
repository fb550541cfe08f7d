"""Runtime ("trainer") step: runs an MLproject entry point in the built image.

Copied into every built image as `mlflow_steps_runtime`; stdlib + MLflow only, and its syntax
must load on every Python an image may carry (3.6 up).
"""

"""Host side of the runtime step: `mlflow-steps run` in an image (buildah, docker, podman) or
in a cached local virtual environment (`local`)."""

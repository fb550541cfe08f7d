"""The step images: the builder's own images (buildah and Kaniko variants), their Dockerfiles,
and `mlflow-steps images`, which builds them from the installed package and pushes them."""

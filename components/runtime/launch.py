"""Run an entry point with MLflow's project runner in the image's own environment, and find
the artifact to return. Works with MLflow 1.x, 2.x and 3.x (their APIs differ; see below)."""

import inspect
import os
import sys

from .inputs import InputError


class RunFailed(Exception):
    """The entry point ran and failed, or the run did not log what was asked for."""


def ensure_experiment(client, name):
    """The id of experiment `name`, created if missing (no list_experiments: 2.0 removed it)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if getattr(experiment, "lifecycle_stage", "active") == "deleted":
            raise InputError(
                "experiment {!r} is deleted; restore it or choose another name".format(name)
            )
        return experiment.experiment_id
    return client.create_experiment(name)


def run_entry_point(client, project_dir, entry_point, parameters, experiment_id, tags):
    """Create the run with `tags` (see record.py), then launch the entry point in it, in place.

    The run never stays RUNNING: any failure after it exists (a parameter MLflow refuses, a
    command that cannot start, a non-zero exit) ends it FAILED, and raises RunFailed.
    """
    import mlflow.projects

    from . import record

    run = record.create_run(client, experiment_id, tags)
    run_id = run.info.run_id
    kwargs = dict(
        uri=project_dir,
        entry_point=entry_point,
        parameters=parameters,
        experiment_id=experiment_id,
        run_id=run_id,
        synchronous=True,
    )
    accepted = inspect.signature(mlflow.projects.run).parameters
    if "env_manager" in accepted:  # MLflow >= 1.26 (2.x and 3.x have only this)
        kwargs["env_manager"] = "local"
    else:  # older MLflow 1.x
        kwargs["use_conda"] = False
    sys.stdout.flush()
    try:
        logged = parameters_of(project_dir, entry_point, parameters)
        record.record_parameters(client, run_id, logged)
        mlflow.projects.run(**kwargs)
    except BaseException as exc:  # ExecutionException on a non-zero exit, and any other
        record.fail_run(client, run_id)
        if not isinstance(exc, Exception):
            raise
        raise RunFailed(
            "run {} of entry point {!r} failed: {}".format(run_id, entry_point, exc)
        ) from None
    return run_id


def parameters_of(project_dir, entry_point, parameters):
    from mlflow.projects import _project_spec

    from . import record

    loaded = _project_spec.load_project(project_dir)
    return record.logged_parameters(loaded, entry_point, parameters)


def resolve_artifact(client, run_id, artifact_path):
    """The URL of `artifact_path` for the run; it must exist.

    MLflow 1.x/2.x log models under the run's artifacts (`<artifact_uri>/<path>`). MLflow 3
    stores a logged model apart from the run, as a LoggedModel whose `artifact_location` holds
    it: that location is returned when a model named `artifact_path` came from this run.
    """
    run = client.get_run(run_id)
    path = artifact_path.strip("/")
    models = logged_models(client, run)
    for model in models:
        if model.name == path:
            return model.artifact_location.rstrip("/")
    # Listing the parent, not the path: MLflow 3 answers list_artifacts(run, "model") with the
    # files of a logged model that is not under the run's artifacts at all.
    parent = path.rpartition("/")[0] or None
    if any(item.path == path for item in client.list_artifacts(run_id, parent)):
        return absolute(run.info.artifact_uri).rstrip("/") + "/" + path
    logged = [item.path for item in client.list_artifacts(run_id)]
    logged += ["logged model {!r}".format(m.name) for m in models]
    if not logged:
        raise RunFailed(
            "run {} logged nothing (no artifact, no model). On MLflow 3, a model logged "
            "while no run is active belongs to no run: call mlflow.start_run() (it joins the "
            "step's run) before log_model".format(run_id)
        )
    raise RunFailed(
        "run {} logged nothing at {!r}; it logged: {}. Set mlflow_artifact_path to one of "
        "these".format(run_id, path, ", ".join(logged))
    )


def absolute(uri):
    """MLflow 1.x may report `./mlruns/...` (relative to the run's directory): make it usable
    from anywhere."""
    if "://" in uri or uri.startswith(("/", "file:", "mlflow-artifacts:")) or ":" in uri[:12]:
        return uri
    return os.path.abspath(uri)


def model_uri(client, run_id, artifact_path):
    """`models:/<model_id>` of the MLflow 3 logged model named `artifact_path` that the run
    logged; "" with MLflow < 3 (no logged models) or when the run logged none by that name."""
    path = artifact_path.strip("/")
    for model in logged_models(client, client.get_run(run_id)):
        if model.name == path:
            return "models:/" + model.model_id
    return ""


def tag_models(client, run_id, tags):
    """Set `tags` on every MLflow 3 logged model the run logged (none before MLflow 3)."""
    if not tags:
        return
    setter = getattr(client, "set_logged_model_tags", None)
    if setter is None:
        return
    for model in logged_models(client, client.get_run(run_id)):
        setter(model.model_id, tags)


def logged_models(client, run):
    search = getattr(client, "search_logged_models", None)  # MLflow 3 only
    if search is None:
        return []
    found = search(
        experiment_ids=[run.info.experiment_id],
        filter_string="source_run_id = '{}'".format(run.info.run_id),
    )
    return [m for m in found if m.source_run_id == run.info.run_id]

"""`python -m mlflow_steps_runtime`: the runtime ("trainer") step inside the built image.

Inputs come from flags or from the FuseML env vars (`FUSEML_MLFLOW_ENTRYPOINT`, ...). Every
workflow input named after a parameter of the entry point (`FUSEML_<PARAM>`) is passed to it,
except the step's own inputs (`RESERVED_NAMES`: the engines always set those); explicit
`mlflow_entrypoint_args` win. MLflow's own env vars (MLFLOW_TRACKING_URI, AWS_*, ...) reach
MLflow untouched.
"""

import argparse
import os
import re
import sys

from .inputs import (
    INPUTS,
    RESERVED_NAMES,
    InputError,
    check_parameter_names,
    codeset_dir,
    default_experiment,
    env_name,
    parse_bool,
    parse_entrypoint_args,
)
from .outputs import output_paths, publish

MLFLOW_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
)
SECRET = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY", re.IGNORECASE)


def make_parser():
    parser = argparse.ArgumentParser(prog="mlflow_steps_runtime", description=__doc__)
    parser.add_argument(
        "project",
        nargs="?",
        default=None,
        help="the codeset (default: the working directory, /project in images)",
    )
    for name, default, description in INPUTS:
        short = "--" + name.replace("mlflow_", "", 1).replace("_", "-")
        flags = ["--" + name.replace("_", "-")]
        flags += [short] if short not in (flags[0], "--verbose") else []
        parser.add_argument(
            *flags,
            dest=name,
            default=None,
            help="{} (env {}; default: {})".format(description, env_name(name), default or "empty"),
        )
    parser.add_argument("--output", help="write the artifact URL to this file")
    parser.add_argument(
        "--model-uri-output",
        help="write the logged model's models:/<model_id> URI to this file (MLflow 3; empty "
        "before MLflow 3, which has no logged models)",
    )
    parser.add_argument(
        "--env-file",
        help="JSON object of environment variables to set first "
        "(how launchers pass secrets without putting them on a command line)",
    )
    return parser


def resolve_inputs(args, environ):
    """Flag, else FUSEML_<NAME>, else default. An empty value means "not set"."""
    values = {}
    for name, default, _ in INPUTS:
        value = getattr(args, name)
        if value is None or value == "":
            value = environ.get(env_name(name), "")
        values[name] = value if value != "" else default
    values["verbose"] = parse_bool(values["verbose"], "verbose")
    return values


def workflow_parameters(entry_point, environ):
    """FUSEML_<PARAM> for every declared parameter of the entry point, but never a step
    input's variable: FUSEML_VERBOSE is the step's `verbose`, not the parameter `verbose`."""
    if entry_point is None:
        return {}
    reserved = {env_name(name) for name in RESERVED_NAMES}
    return {
        name: environ[env_name(name)]
        for name in entry_point.parameters
        if env_name(name) in environ and env_name(name) not in reserved
    }


def load_env_file(path):
    import json

    try:
        with open(path) as handle:
            values = json.load(handle)
    except (OSError, ValueError) as exc:
        raise InputError("--env-file {}: cannot be read as JSON ({})".format(path, exc)) from None
    if not isinstance(values, dict):
        raise InputError("--env-file {}: must hold a JSON object".format(path))
    return {str(k): str(v) for k, v in values.items()}


def describe_env(environ):
    lines = []
    for name in MLFLOW_ENV:
        if name in environ:
            value = environ[name]
            shown = "***" if SECRET.search(name) else scrub(value, {})
            lines.append("  {}={}".format(name, shown))
    return "\n".join(lines) or "  (no MLflow variables set)"


def scrub(text, environ=os.environ):
    """No secret reaches a log: URL credentials and the values of secret variables go."""
    text = re.sub(r"//[^/@\s]*@", "//***@", str(text))
    for name, value in environ.items():
        if SECRET.search(name) and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def log(message):
    sys.stderr.write("mlflow-steps runtime: {}\n".format(scrub(message)))
    sys.stderr.flush()


def main(argv=None, environ=None, out=None):
    """`out`: where the artifact URL is printed (default: stdout)."""
    environ = os.environ if environ is None else environ
    args = make_parser().parse_args(argv)
    try:
        if args.env_file:
            environ.update(load_env_file(args.env_file))
        return run(args, environ, out or sys.stdout)
    except InputError as exc:
        log("error: {}".format(exc))
        return 2
    except Exception as exc:
        from .launch import RunFailed

        if isinstance(exc, RunFailed):
            log("error: {}".format(exc))
            return 1
        log("error: {}: {}".format(exc.__class__.__name__, exc))
        return 1


def run(args, environ, out):
    from . import project as projects

    values = resolve_inputs(args, environ)
    project_dir = codeset_dir(args.project or os.getcwd(), values["context"])
    with projects.adapted_loader():
        return run_project(args, values, project_dir, environ, out)


def run_project(args, values, project_dir, environ, out):
    from . import launch, schema, store
    from . import project as projects

    project = projects.load_project(project_dir)
    entry_name = values["mlflow_entrypoint"]
    entry_point = projects.check_entry_point(project, entry_name, project_dir)
    parameters = workflow_parameters(entry_point, environ)
    parameters.update(parse_entrypoint_args(values["mlflow_entrypoint_args"]))
    projects.check_parameters(entry_point, parameters, project_dir)
    # Every name that reaches MLflow's command line, whatever the entry point's kind.
    check_parameter_names(parameters, "parameter")
    experiment = values["mlflow_experiment"] or default_experiment(
        project_dir, getattr(project, "name", None)
    )
    if values["verbose"]:
        log(
            "project {}, entry point {!r}, parameters {}, experiment {!r}".format(
                project_dir, entry_name, parameters, experiment
            )
        )
        log("MLflow environment:\n" + describe_env(environ))

    environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # images carry no git executable
    store.check_stores(environ)
    schema.check_schemas(environ)  # before MLflow opens (and would migrate) a database store
    from . import record

    tags = record.run_tags(project_dir, entry_name, project.env_type)
    image_tags = record.image_tags(environ, values["image_digest"])
    tags.update(image_tags)
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    try:
        experiment_id = launch.ensure_experiment(client, experiment)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            "tracking server {}: cannot use experiment {!r} ({}: {})".format(
                client_uri(), experiment, exc.__class__.__name__, first_line(exc)
            )
        ) from None
    # The store is made (and cached by MLflow) above, in the caller's working directory: a
    # local store's default artifact root (./mlruns) is the caller's, never the codeset's. Run
    # from the codeset, as in images (/project): MLflow 1.x records relative artifact roots
    # that must mean the same place to the runner and to this process.
    os.chdir(project_dir)
    log("running entry point {!r} in experiment {!r}".format(entry_name, experiment))
    run_id = launch.run_entry_point(
        client, project_dir, entry_name, parameters, experiment_id, tags
    )
    url = launch.resolve_artifact(client, run_id, values["mlflow_artifact_path"])
    model_uri = launch.model_uri(client, run_id, values["mlflow_artifact_path"])
    launch.tag_models(client, run_id, image_tags)
    publish(url, output_paths(args.output, environ))
    publish(model_uri, output_paths(args.model_uri_output, environ, "MODEL_URI_RESULT"))
    log("run {} finished; artifact: {}; model: {}".format(run_id, url, model_uri or "-"))
    out.write(url + "\n")
    return 0


def client_uri():
    import mlflow

    return mlflow.get_tracking_uri()


def first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""

"""The runtime step's inputs (plain data: the host-side step spec is built from it) and the
parsing of `mlflow_entrypoint_args`.

`mlflow_entrypoint_args` is a list of `name=value` items separated by commas and/or spaces:
`epochs=2,batch_size=64` or `epochs=2 batch_size=64`. A value that holds commas or spaces is
quoted, shell style, with single or double quotes: `message="hello, world" tags='a b'`.
A value may not start with `=` (`a==1` is rejected as a likely typo; quote nothing can change
that, so pass such values through a workflow input named after the parameter instead).
"""

import os
import re
import shlex

# (name, default, description); every input is also read from FUSEML_<NAME>.
INPUTS = (
    (
        "mlflow_experiment",
        "",
        "Experiment name; empty: <org>.<project> from .fuseml/_org and .fuseml/_project, else the "
        "MLproject name, else the codeset folder's name. Created if missing.",
    ),
    ("mlflow_entrypoint", "main", "Entry point of the MLproject to run."),
    (
        "mlflow_entrypoint_args",
        "",
        "name=value items, comma- or space-separated; quote values holding commas or spaces.",
    ),
    (
        "mlflow_artifact_path",
        "model",
        "Artifact path of the run returned as the output (where the model was logged).",
    ),
    ("verbose", "false", "Verbose logging (secret values are never printed)."),
    (
        "context",
        ".",
        "Folder of the codeset (the MLproject) inside the source workspace, relative to its "
        "root, as the Tekton catalog's CONTEXT and `mlflow run REPO#SUBDIRECTORY`; "
        "default: the root.",
    ),
    (
        "image_digest",
        "",
        "Digest (sha256:...) of the environment image, mlflow-builder's digest output: the "
        "tag mlflow_steps.image.digest on the run and its logged models, beside "
        "mlflow_steps.image (the image reference, from MLFLOW_STEPS_IMAGE, which the engines "
        "set). Empty: the digest of an image given by digest, else none.",
    ),
)
# A parameter of the entry point named like one of these never takes the step input's value
# (FUSEML_<NAME>): only mlflow_entrypoint_args or its default give it one.
RESERVED_NAMES = tuple(name for name, _, _ in INPUTS)
BOOLEAN_INPUTS = ("verbose",)


class InputError(Exception):
    """Bad input: the message says what is wrong and what is valid."""


# An entry point's parameter name: MLflow puts it into the command line (`--name value` for a
# parameter the entry point does not declare, and for every parameter of a .py/.sh entry
# point), unquoted before MLflow 3.18. A name is a word: letters, digits, `_`, `-`, `.`.
PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")


def parameter_name_problem(name):
    """Why `name` cannot be a parameter name ("" when it can)."""
    if PARAMETER_NAME.fullmatch(name):
        return ""
    return (
        "is not a parameter name: start with a letter or _, then letters, digits, _, - or . "
        "(at most 128); a name reaches the entry point's command line"
    )


def check_parameter_names(parameters, what):
    """InputError naming every key of `parameters` that is not a parameter name."""
    bad = [
        "{} {!r} {}".format(what, name, parameter_name_problem(name))
        for name in sorted(parameters)
        if parameter_name_problem(name)
    ]
    if bad:
        raise InputError("; ".join(bad))


def codeset_dir(workspace, context):
    """The codeset's folder: `context` (str, relative to the workspace) inside `workspace`,
    symbolic links followed. One rule for the builder and the runtime step: the workspace is
    mounted at a different path in each step, so an absolute `context` is refused in both, as
    is one that leads out of the workspace. Raises InputError."""
    root = os.path.realpath(workspace)
    folder = os.path.realpath(os.path.join(root, context or "."))
    if os.path.isabs(context or "") or not (folder + os.sep).startswith(root + os.sep):
        raise InputError(
            "context {!r} is not a folder inside the workspace {}; give the codeset's folder "
            "relative to the workspace, e.g. projects/wine (the Tekton catalog's CONTEXT; each "
            "step mounts the workspace at its own path)".format(context, workspace)
        )
    return folder


def env_name(name):
    return "FUSEML_" + name.upper().replace("-", "_").replace(".", "_")


def parse_entrypoint_args(text):
    """`a=1,b=2` / `a=1 b=2` / `msg="x, y"` -> {"a": "1", ...}; raises InputError."""
    lexer = shlex.shlex(text or "", posix=True)
    lexer.whitespace = " \t\r\n,"
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        items = list(lexer)
    except ValueError as exc:
        raise InputError(
            "mlflow_entrypoint_args: {} in {!r}; close the quote".format(exc, text)
        ) from None
    values = {}
    previous = ""
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(
                "mlflow_entrypoint_args: {!r} is not name=value; write items like "
                "epochs=2,batch_size=64{}".format(item, quote_hint(previous, item))
            )
        previous = item
        if value.startswith("="):
            raise InputError(
                "mlflow_entrypoint_args: {!r} has `==`; write {}=VALUE".format(item, name)
            )
        if name in values:
            raise InputError("mlflow_entrypoint_args: {} is given twice".format(name))
        if parameter_name_problem(name.strip()):
            raise InputError(
                "mlflow_entrypoint_args: {!r} {}".format(name, parameter_name_problem(name.strip()))
            )
        values[name.strip()] = value
    return values


def quote_hint(previous, item):
    """`layers=[128,64]` splits at its comma: say how to quote it."""
    name, _, value = previous.partition("=")
    if value[:1] in ("[", "(", "{", "'", '"'):
        return "; a value that holds commas or spaces must be quoted: {}='{},{}'".format(
            name, value, item
        )
    return ""


# The words both steps accept for booleans (FuseML passes strings); the host-side table in
# components/spec.py is the same (a test checks), this copy ships in the image.
BOOLEAN_WORDS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
    "": False,
}


def parse_bool(value, what):
    text = str(value).strip().lower()
    if text in BOOLEAN_WORDS:
        return BOOLEAN_WORDS[text]
    raise InputError("{}: {!r} is not a boolean; use true or false".format(what, value))


def default_experiment(project_dir, project_name):
    """<org>.<project> from FuseML's .fuseml files, else the MLproject name, else the folder."""
    fuseml = os.path.join(project_dir, ".fuseml")
    parts = []
    for name in ("_org", "_project"):
        try:
            with open(os.path.join(fuseml, name)) as handle:
                parts.append(handle.read().strip())
        except OSError:
            parts.append("")
    if all(parts):
        return ".".join(parts)
    if project_name:
        return project_name
    return os.path.basename(os.path.abspath(project_dir)) or "Default"

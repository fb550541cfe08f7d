"""Step outputs: written only on success, atomically, to every place the caller asked for.

Shared by both steps; part of the runtime module, so it keeps to Python 3.6 syntax.
"""

import os
import tempfile


def write_atomically(path, value):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def output_paths(explicit, environ=os.environ, result_env="TASK_RESULT"):
    """`--output FILE`, and `/tekton/results/$TASK_RESULT` when FuseML/Tekton sets it
    (MLFLOW_STEPS_RESULTS_DIR moves /tekton/results, for tests off-cluster); `result_env`
    names the variable for outputs other than the step's main one."""
    paths = [explicit] if explicit else []
    if environ.get(result_env):
        results = environ.get("MLFLOW_STEPS_RESULTS_DIR", "/tekton/results")
        paths.append(os.path.join(results, environ[result_env]))
    return paths


def publish(value, paths):
    for path in paths:
        write_atomically(str(path), value)

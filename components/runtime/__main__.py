import atexit
import os
import sys

# stdout carries the step's output only, the artifact URL on one line: MLflow's messages and
# the entry point's own output (it inherits file descriptor 1) go to stderr, as `docker build
# -q` keeps its log off stdout.
sys.stdout.flush()
result = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

from .cli import main  # noqa: E402

code = main(out=result)
result.flush()
# The step's work is done and its outputs are written and closed. What is left of a normal
# exit is tearing down every module MLflow imported, about 0.3 s of each run's start-up
# overhead on this project's test machine: run the exit handlers (MLflow's and logging's),
# flush, and leave without the teardown.
atexit._run_exitfuncs()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)

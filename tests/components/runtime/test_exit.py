"""`python -m mlflow_steps_runtime` leaves without tearing down its modules: its exit code,
its buffered output and the exit handlers registered in it (MLflow's, logging's) still count."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ENTRY = """\
import atexit, runpy, sys
marker = sys.argv.pop()
atexit.register(lambda: open(marker, "w").write("exit handlers ran"))
print("buffered before the step", flush=False)
runpy.run_module("mlflow_steps_runtime", run_name="__main__")
"""


def test_exit_code_output_and_exit_handlers_survive(tmp_path):
    runtime = tmp_path / "rt" / "mlflow_steps_runtime"
    shutil.copytree(
        ROOT / "components" / "runtime", runtime, ignore=shutil.ignore_patterns("__pycache__")
    )
    (tmp_path / "entry.py").write_text(ENTRY)
    not_a_codeset = tmp_path / "empty"
    not_a_codeset.mkdir()
    marker = tmp_path / "marker"
    done = subprocess.run(
        [sys.executable, str(tmp_path / "entry.py"), str(not_a_codeset), str(marker)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(runtime.parent), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2, done.stderr  # an input error, as before
    assert "MLproject" in done.stderr
    assert done.stdout == "buffered before the step\n"  # flushed through a pipe
    assert marker.read_text() == "exit handlers ran"

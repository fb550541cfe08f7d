"""The CLI every builder and runtime step starts stays light: no engine generator imports."""

from __future__ import annotations

import subprocess
import sys


def test_cli_start_up_does_not_import_generator_engines():
    code = (
        "import sys, mlflow_steps.cli; "
        "heavy = sorted(m for m in ('hera', 'kfp', 'mlflow') if m in sys.modules); "
        "print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

"""Entry-point parameter names never reach a shell (issue 23, item 5), run as the step runs in
the local engine and in images (`python -m`, host MLflow, a real SQLite store).

The host's MLflow is 3.17.2: before 3.18, MLflow writes the name of an undeclared parameter,
and of every parameter of a `.py`/`.sh` entry point, unquoted into the `bash -c` command
(`--name value`), so `x;touch${IFS}pwned;y=1` ran `touch`. Names now follow a grammar checked
before MLflow is called; values are quoted by MLflow (shlex.quote) and stay values.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.components.runtime.test_bad_inputs import run_step

MLPROJECT = """\
name: names
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
    command: "python log_args.py --alpha {alpha}"
"""
LOG_ARGS = """\
import sys, mlflow
with open("args.txt", "w") as f:
    f.write("\\n".join(sys.argv[1:]))
mlflow.log_artifact("args.txt")
"""
ENTRY_POINTS = [["--entrypoint", "log_args.py"], ["--entrypoint", "run.sh"], []]


@pytest.fixture
def codeset(tmp_path: Path) -> Path:
    root = tmp_path / "codeset"
    root.mkdir()
    (root / "MLproject").write_text(MLPROJECT)
    (root / "log_args.py").write_text(LOG_ARGS)
    (root / "run.sh").write_text('python log_args.py "$@"\n')
    return root


def markers(tmp_path: Path) -> list[Path]:
    return [p for p in tmp_path.rglob("pwned*")] + list(Path("/tmp").glob("pwned*"))


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=["py", "sh", "mlproject"])
@pytest.mark.parametrize(
    "name", ["x;touch${IFS}pwned;y", "x$(touch${IFS}pwned)", "x`touch${IFS}pwned`"]
)
def test_a_shell_command_in_a_parameter_name_never_runs(codeset, tmp_path, entry, name):
    done, output, _ = run_step(
        codeset, tmp_path, *entry, "--entrypoint-args", f"{name}=1", "--artifact-path", "args.txt"
    )
    assert done.returncode == 2, done.stderr
    assert "not a parameter name" in done.stderr
    assert markers(tmp_path) == [] and not output.exists()


@pytest.mark.parametrize("entry", ENTRY_POINTS[:2], ids=["py", "sh"])
def test_values_are_passed_quoted_and_stay_values(codeset, tmp_path, entry):
    value = "a;touch${IFS}pwned2 $(touch pwned3)"
    done, output, _ = run_step(
        codeset,
        tmp_path,
        *entry,
        "--entrypoint-args",
        f"msg='{value}' max-depth=3",
        "--artifact-path",
        "args.txt",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    args = Path(output.read_text().removeprefix("file://")).read_text().splitlines()
    assert args[args.index("--msg") + 1] == value and args[args.index("--max-depth") + 1] == "3"
    assert markers(tmp_path) == []

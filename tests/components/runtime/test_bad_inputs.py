"""Bad runtime input, run as the step runs (a subprocess of `python -m`, host MLflow, a real
SQLite tracking store): a clear message, a non-zero exit, no output written, and for problems
found before launching, no run created."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import free_port

MLPROJECT = """\
name: bad_inputs
entry_points:
  main:
    parameters:
      epochs: {type: int, default: 2}
    command: "python -c 'import sys; print(sys.argv)' {epochs}"
  fail:
    command: "python -c 'import sys; sys.exit(3)'"
  notes:
    command: "python log_notes.py"
  fetch:
    parameters:
      source: uri
    command: "python -c pass {source}"
  broken:
    command: "python -c pass {undeclared}"
"""
LOG_NOTES = """\
import mlflow
with open("notes.txt", "w") as f:
    f.write("no model here")
mlflow.log_artifact("notes.txt")
"""


@pytest.fixture
def codeset(tmp_path: Path) -> Path:
    root = tmp_path / "codeset"
    root.mkdir()
    (root / "MLproject").write_text(MLPROJECT)
    (root / "log_notes.py").write_text(LOG_NOTES)
    return root


def run_step(codeset: Path, tmp_path: Path, *flags: str, tracking: str | None = None):
    db = tmp_path / "mlflow.db"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking or f"sqlite:///{db}",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "3",
    }
    output = tmp_path / "out" / "model-url"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow_steps.components.runtime",
            str(codeset),
            "--output",
            str(output),
            *flags,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    return done, output, db


BEFORE_LAUNCH = [
    (
        ["--entrypoint", "train"],
        "unknown entry point 'train'; the MLproject declares: broken, fail, fetch, main, notes",
    ),
    (
        ["--entrypoint", "fetch", "--entrypoint-args", "source=data.csv"],
        "parameter 'source' must be a URI with a scheme",
    ),
    (["--entrypoint", "fetch"], "parameter 'source' (uri) is required"),
    (["--entrypoint-args", "epochs=abc"], "parameter 'epochs' must be an int, got 'abc'"),
    (["--entrypoint-args", "=1"], "'=1' is not name=value"),
    (["--entrypoint-args", "a=="], "'a==' has `==`"),
    (["--verbose", "sometimes"], "'sometimes' is not a boolean"),
]


@pytest.mark.parametrize(
    ("flags", "fragment"), BEFORE_LAUNCH, ids=[f[1][:30] for f in BEFORE_LAUNCH]
)
def test_rejected_before_any_run(codeset, tmp_path, flags, fragment):
    done, output, db = run_step(codeset, tmp_path, *flags)
    assert done.returncode == 2, done.stderr
    assert fragment in done.stderr
    assert not output.exists() and not db.exists()  # no tracking store touched, no run


def test_missing_mlproject_lists_the_scripts_to_run(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "train.py").write_text("")
    done, output, db = run_step(empty, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "has no MLproject, so its entry points are its scripts" in done.stderr
    assert "one of: train.py (got 'main')" in done.stderr
    assert not output.exists() and not db.exists()


def run_statuses(db: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(db) as connection:
        return [row[0] for row in connection.execute("SELECT status FROM runs")]


@pytest.mark.parametrize("entry_point", ["broken", "fail"])
def test_a_failure_after_the_run_exists_ends_it_failed(codeset, tmp_path, entry_point):
    """`broken`'s command names a placeholder no parameter fills: MLflow raises before the
    command starts (KeyError in compute_command); `fail` exits 3."""
    done, output, db = run_step(codeset, tmp_path, "--entrypoint", entry_point)
    assert done.returncode == 1, done.stderr
    assert f"of entry point '{entry_point}' failed" in done.stderr
    assert run_statuses(db) == ["FAILED"] and not output.exists()


def test_undeclared_parameters_are_appended_as_mlflow_appends_them(codeset, tmp_path):
    done, _, db = run_step(
        codeset, tmp_path, "--entrypoint", "main", "--entrypoint-args", "epochs=4,seed=7"
    )
    # the command prints its argv and then logs no model: the step fails at resolve_artifact
    assert "['-c', '4', '--seed', '7']" in done.stderr, done.stderr
    import sqlite3

    with sqlite3.connect(db) as connection:
        params = dict(connection.execute("SELECT key, value FROM params"))
    assert params == {"epochs": "4", "seed": "7"}  # declared and undeclared, as mlflow run


def test_unreachable_tracking_server(codeset, tmp_path):
    done, output, _ = run_step(codeset, tmp_path, tracking=f"http://127.0.0.1:{free_port()}")
    assert done.returncode != 0
    assert (
        "tracking server http://127.0.0.1:" in done.stderr
        and "cannot use experiment" in done.stderr
    )
    assert not output.exists()


def test_failing_entry_point_reports_the_run_id(codeset, tmp_path):
    done, output, _ = run_step(codeset, tmp_path, "--entrypoint", "fail")
    assert done.returncode == 1
    assert "of entry point 'fail' failed" in done.stderr
    run_id = done.stderr.split("error: run ")[1].split()[0]
    assert len(run_id) == 32 and not output.exists()


def test_missing_artifact_names_what_the_run_logged(codeset, tmp_path):
    done, output, _ = run_step(codeset, tmp_path, "--entrypoint", "notes")
    assert done.returncode == 1
    assert "logged nothing at 'model'; it logged: notes.txt" in done.stderr
    assert not output.exists()
    ok, output, _ = run_step(
        codeset, tmp_path, "--entrypoint", "notes", "--artifact-path", "notes.txt"
    )
    assert ok.returncode == 0, ok.stderr
    assert output.read_text().endswith("/artifacts/notes.txt")
    assert Path(output.read_text()).read_text() == "no model here"


def test_workflow_inputs_fill_parameters_and_explicit_args_win(codeset, tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEML_EPOCHS", "7")
    monkeypatch.setenv("FUSEML_MLFLOW_ARTIFACT_PATH", "")  # empty means default, no crash
    monkeypatch.setenv("FUSEML_MLFLOW_EXPERIMENT", "")
    done, _, _ = run_step(codeset, tmp_path, "--verbose", "true")
    assert "'epochs': '7'" in done.stderr and "experiment 'bad_inputs'" in done.stderr
    done, _, _ = run_step(codeset, tmp_path, "--entrypoint-args", "epochs=9", "--verbose", "true")
    assert "'epochs': '9'" in done.stderr


def test_verbose_logs_never_print_secret_values(codeset, tmp_path, monkeypatch):
    secrets = {
        "MLFLOW_TRACKING_PASSWORD": "pw-9f8e7d",
        "AWS_SECRET_ACCESS_KEY": "sk-1a2b3c",
        "AWS_ACCESS_KEY_ID": "ak-4d5e6f",
        "MLFLOW_TRACKING_USERNAME": "bob",
    }
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    done, _, _ = run_step(
        codeset,
        tmp_path,
        "--verbose",
        "true",
        tracking=f"http://bob:pw-9f8e7d@127.0.0.1:{free_port()}",
    )
    text = done.stdout + done.stderr
    assert "MLFLOW_TRACKING_PASSWORD=***" in text and "AWS_SECRET_ACCESS_KEY=***" in text
    for value in ("pw-9f8e7d", "sk-1a2b3c", "ak-4d5e6f"):
        assert value not in text

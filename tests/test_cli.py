"""The CLI every builder and runtime step starts: light, and boolean flags that never take the
codeset's path as their value."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlflow_steps.cli import boolean_flags_spelled_out, builder_options, make_parser
from mlflow_steps.components.builder.step import BUILDER
from mlflow_steps.components.spec import resolve


def test_cli_start_up_does_not_import_generator_engines():
    code = (
        "import sys, mlflow_steps.cli; "
        "heavy = sorted(m for m in ('hera', 'kfp', 'mlflow') if m in sys.modules); "
        "print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def parse(*argv: str):
    return make_parser().parse_args(boolean_flags_spelled_out(argv))


@pytest.mark.parametrize("command", ["build", "run", "inspect"])
@pytest.mark.parametrize(
    ("argv", "flag", "expected"),
    [
        (["--verbose", "PATH"], "verbose", True),
        (["--insecure", "PATH"], "insecure", True),
        (["PATH", "--verbose"], "verbose", True),
        (["--verbose=false", "PATH"], "verbose", False),
        (["--verbose", "false", "PATH"], "verbose", False),
        (["--insecure", "no", "PATH", "--verbose", "yes"], "verbose", True),
        (["PATH"], "verbose", False),
    ],
)
def test_boolean_flags_never_swallow_the_path(monkeypatch, command, argv, flag, expected):
    monkeypatch.delenv("FUSEML_VERBOSE", raising=False)
    monkeypatch.delenv("FUSEML_INSECURE", raising=False)
    args = parse(command, *argv)
    assert args.path == "PATH"
    assert resolve(BUILDER, {**vars(args), "engine": "auto"})[flag] is expected


def test_fuseml_env_vars_still_set_booleans(monkeypatch):
    monkeypatch.setenv("FUSEML_VERBOSE", "true")
    monkeypatch.setenv("FUSEML_COMPILE_BYTECODE", "off")
    options = builder_options(parse("build", "PATH"))
    assert options.verbose and not options.compile_bytecode
    assert not builder_options(parse("build", "PATH", "--verbose=false")).verbose


def test_a_bad_boolean_value_is_an_error(capsys):
    from mlflow_steps.cli import main

    assert main(["inspect", "examples/python-env", "--verbose=maybe"]) == 1
    assert "`maybe` is not a boolean" in capsys.readouterr().err

"""The CLI every builder and runtime step starts: light, and boolean flags that never take the
codeset's path as their value."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_steps.cli import boolean_flags_spelled_out, builder_options, make_parser
from mlflow_steps.components.builder.step import BUILDER
from mlflow_steps.components.spec import resolve

ROOT = Path(__file__).resolve().parent.parent


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


def test_a_closed_pipe_ends_quietly():
    """`mlflow-steps inspect X | head -1`: the reader has gone; the command leaves with 141
    (128 + SIGPIPE, as a shell reports a tool killed by SIGPIPE) and no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mlflow_steps", "inspect", str(ROOT / "examples/sklearn-pip")],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141
    assert done.stderr == ""


def all_parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from all_parsers(sub)


def test_every_option_of_every_command_is_documented():
    """`--help` of every command (generate, images and stack up included) explains each
    option."""
    undocumented = [
        f"{parser.prog} {action.option_strings[0]}"
        for parser in all_parsers(make_parser())
        for action in parser._actions
        if action.option_strings and not action.help
    ]
    assert undocumented == []
    generate_help = next(p for p in all_parsers(make_parser()) if p.prog.endswith("generate"))
    assert "none (no engine, non-root; default), kaniko (root) or buildah (privileged)" in " ".join(
        generate_help.format_help().split()
    )


NOISY_COMMAND = """
import subprocess, sys
from mlflow_steps import cli

def noisy(args, out):
    subprocess.run(["echo", "a child's stdout"], check=True)
    subprocess.run(["sh", "-c", "echo from a grandchild"], check=True)
    print("a stray print")
    sys.stdout.write("written to sys.stdout\\n")
    print("the output", file=out)
    return 0

cli.COMMANDS["inspect"] = noisy
raise SystemExit(cli.main(["inspect", "PATH"]))
"""


def test_stdout_carries_the_outputs_alone_whatever_else_a_command_prints():
    """Any child a command starts (an engine, an installer, a script) and any stray `print`
    write to stderr: the CLI points file descriptor 1 and `sys.stdout` there while the command
    runs, and only the command's outputs reach the real stdout."""
    done = subprocess.run(
        [sys.executable, "-c", NOISY_COMMAND], capture_output=True, text=True, check=True
    )
    assert done.stdout == "the output\n"
    assert sorted(done.stderr.splitlines()) == [
        "a child's stdout",
        "a stray print",
        "from a grandchild",
        "written to sys.stdout",
    ]


def test_build_keeps_its_environ_from_what_it_starts(tmp_path):
    """`build` makes itself non-dumpable before anything runs (subprocess_env): uv, the base's
    interpreter or an engine, run as its user, cannot read its /proc/<pid>/environ."""
    probe = (
        "import ctypes, sys\n"
        "from mlflow_steps.cli import main\n"
        "code = main(['build', sys.argv[1], '--phase', 'install'])\n"
        "print(code, ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))\n"  # PR_GET_DUMPABLE
    )
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.stdout.split() == ["1", "0"], done.stderr
    assert "--phase and --downloads go together" in done.stderr

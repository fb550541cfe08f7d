"""docs/parameters.md's tables are the generated ones (MLFLOW_STEPS_REGENERATE=1 rewrites)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mlflow_steps.cli import main
from mlflow_steps.components.steps import BUILDER, RUNTIME
from mlflow_steps.generators.docs import parameter_tables, update

PAGE = Path(__file__).resolve().parents[2] / "docs" / "parameters.md"


def test_the_parameter_tables_match_the_specs():
    text = PAGE.read_text()
    if os.environ.get("MLFLOW_STEPS_REGENERATE") == "1":
        PAGE.write_text(update(text))
        text = PAGE.read_text()
    assert parameter_tables() in text, (
        "docs/parameters.md's tables drifted: MLFLOW_STEPS_REGENERATE=1 pytest"
    )


def test_tables_name_every_input_in_each_convention():
    tables = parameter_tables()
    for spec in (BUILDER, RUNTIME):
        for item in spec.inputs:
            assert f"| `{item.name}` | " in tables and f" | `{item.env}` |" in tables
    assert "`PULL_REGISTRY`" in tables and "`pull-registry`" in tables


@pytest.mark.parametrize(("spec", "command"), [(BUILDER, "build"), (RUNTIME, "run")])
def test_cli_flag_column_is_what_help_prints(spec, command, capsys):
    """Each row's CLI flags are exactly the option strings `mlflow-steps COMMAND --help`
    prints for that input, and each one is accepted by the parser."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = capsys.readouterr().out
    rows = {line.split(" | ")[0].strip("|` "): line.split(" | ")[1] for line in table_lines()}
    for item in spec.inputs:
        flags = re.findall(r"`([^`]+)`", rows[item.name])
        assert flags, item.name
        for flag in flags:
            assert re.search(rf"(^|[ ,]){re.escape(flag)}[ =,\n]", help_text), (flag, command)
    assert rows["mlflow_experiment"] == "`--experiment`, `--mlflow-experiment`"


def table_lines() -> list[str]:
    return [line for line in parameter_tables().splitlines() if line.startswith("| `")]

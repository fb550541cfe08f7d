"""The README's parameter tables are the generated ones (MLFLOW_STEPS_REGENERATE=1 rewrites)."""

from __future__ import annotations

import os
from pathlib import Path

from mlflow_steps.components.steps import BUILDER, RUNTIME
from mlflow_steps.generators.docs import parameter_tables, update

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_parameter_tables_match_the_specs():
    text = README.read_text()
    if os.environ.get("MLFLOW_STEPS_REGENERATE") == "1":
        README.write_text(update(text))
        text = README.read_text()
    assert parameter_tables() in text, "README tables drifted: MLFLOW_STEPS_REGENERATE=1 pytest"


def test_tables_name_every_input_in_each_convention():
    tables = parameter_tables()
    for spec in (BUILDER, RUNTIME):
        for item in spec.inputs:
            assert f"| `{item.name}` | `{item.flag}` | `{item.env}` |" in tables
    assert "`PULL_REGISTRY`" in tables and "`pull-registry`" in tables

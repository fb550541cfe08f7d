"""The two step specs: each whole in its step's step.py, and spec.py independent of both."""

from __future__ import annotations

import ast
from pathlib import Path

from mlflow_steps.components import spec, steps
from mlflow_steps.components.builder import step as builder_step
from mlflow_steps.components.runtime import inputs
from mlflow_steps.components.runtime import step as runtime_step

COMPONENTS = Path(__file__).resolve().parents[2] / "components"


def test_spec_module_imports_neither_step():
    tree = ast.parse((COMPONENTS / "spec.py").read_text())
    imported = [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ] + [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    assert not [m for m in imported if "builder" in m or "runtime" in m], imported


def test_one_object_per_step_and_both_specs_are_complete():
    assert steps.BUILDER is builder_step.BUILDER and steps.RUNTIME is runtime_step.RUNTIME
    for step in steps.STEPS:
        assert step.display_name and step.command and step.outputs
        assert set(step.output_flags) == {o.name for o in step.outputs}
    assert builder_step.BUILDER.image and runtime_step.RUNTIME.image is None


def test_the_images_boolean_words_are_the_hosts():
    assert inputs.BOOLEAN_WORDS == spec.BOOLEAN_WORDS


def test_the_runtime_spec_never_ships_in_an_image():
    from mlflow_steps.components.builder.planning.plan import runtime_files

    shipped = {name.rsplit("/", 1)[-1] for name in runtime_files()}
    assert "step.py" not in shipped and "cli.py" in shipped and "store.py" in shipped

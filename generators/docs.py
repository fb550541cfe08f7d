"""The parameter tables of docs/parameters.md, generated from the step specs and the CLI's own
parser (a test keeps them in sync): the CLI flag column is what `mlflow-steps build --help` and
`mlflow-steps run --help` spell for each input."""

from __future__ import annotations

from mlflow_steps.components.spec import StepSpec
from mlflow_steps.components.steps import BUILDER, RUNTIME

from .naming import kebab, tekton_param

BEGIN, END = "<!-- parameters: generated, do not edit -->", "<!-- /parameters -->"


def table(spec: StepSpec, flags: dict[str, list[str]]) -> str:
    """`flags`: {input name: the CLI flags that set it}."""
    rows = [
        f"## `{spec.name}`",
        "",
        "| input | CLI flag | FuseML env | Tekton param | Argo param | KFP input | default |"
        " description |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i in spec.inputs:
        engines = (
            ["-"] * 3
            if i.cli_only
            else [f"`{tekton_param(i.name)}`", f"`{kebab(i.name)}`", f"`{i.name}`"]
        )
        default = f"`{i.default}`" if i.default else "(empty)"
        rows.append(
            f"| `{i.name}` | {', '.join(f'`{f}`' for f in flags[i.name])} | `{i.env}` | "
            f"{' | '.join(engines)} | "
            f"{default} | {i.description} |"
        )
    outputs = ", ".join(f"`{o.name}` ({o.description})" for o in spec.outputs)
    rows += ["", f"Outputs: {outputs}", ""]
    return "\n".join(rows)


def parameter_tables() -> str:
    from mlflow_steps.cli import input_flags

    return "\n".join(
        [
            BEGIN,
            "",
            table(BUILDER, input_flags("build")),
            table(RUNTIME, input_flags("run")),
            END,
        ]
    )


def update(readme: str) -> str:
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    return readme[:start] + parameter_tables() + readme[end:]

"""Step specs -> Kubeflow Pipelines component specs (the component YAML that
`kfp.components.load_component_from_text` reads and kfp's compiler compiles).

Inputs keep the spec's snake_case names and reach the CLI as flags (`--pull-registry {x}`);
the codeset is an input artifact; outputs are output paths. The runtime component's image is a
placeholder: pipelines set it from the builder's `image` output (`set_container_image`).
"""

from __future__ import annotations

from typing import Any

import yaml

from mlflow_steps.components.spec import StepSpec
from mlflow_steps.components.steps import BUILDER, RUNTIME, builder_image

RUNTIME_IMAGE_PLACEHOLDER = "set-from-the-builder-output"


def component_spec(spec: StepSpec, image: str) -> dict[str, Any]:
    inputs: list[dict[str, Any]] = [
        {
            "name": "codeset",
            "type": "Artifact",
            "description": "The source workspace; the MLflow codeset is its `context` folder.",
        }
    ]
    args: list[Any] = [{"inputPath": "codeset"}]
    for item in spec.engine_inputs:
        inputs.append(
            {
                "name": item.name,
                "type": "String",
                "default": item.default,
                "optional": True,
                "description": item.description,
            }
        )
        args += [item.flag, {"inputValue": item.name}]
    for output in spec.outputs:
        args += [spec.output_flags[output.name], {"outputPath": output.name}]
    command = list(spec.command[:-1]) if spec.command[-1] == spec.workdir else list(spec.command)
    return {
        "name": spec.name.replace("-", "_"),
        "description": spec.description,
        "inputs": inputs,
        "outputs": [
            {"name": o.name, "type": "String", "description": o.description} for o in spec.outputs
        ],
        "implementation": {"container": {"image": image, "command": command, "args": args}},
    }


def builder_component(image: str = "", build_engine: str = "kaniko") -> dict[str, Any]:
    spec = component_spec(BUILDER, image or builder_image(build_engine))
    return spec


def runtime_component() -> dict[str, Any]:
    return component_spec(RUNTIME, RUNTIME_IMAGE_PLACEHOLDER)


def component_texts(image: str = "", build_engine: str = "kaniko") -> dict[str, str]:
    return {
        "mlflow_builder": yaml.safe_dump(builder_component(image, build_engine), sort_keys=False),
        "mlflow_runtime": yaml.safe_dump(runtime_component(), sort_keys=False),
    }

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
from mlflow_steps.components.steps import BUILDER, BUILDER_VARIANTS, RUNTIME, builder_variant

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
    # Outputs are strings: an object output gives one per field (source_uri, source_digest).
    strings = spec.string_outputs()
    for output, flag in strings:
        args += [flag, {"outputPath": output.name}]
    command = list(spec.command[:-1]) if spec.command[-1] == spec.workdir else list(spec.command)
    return {
        "name": spec.name.replace("-", "_"),
        "description": spec.description,
        "inputs": inputs,
        "outputs": [
            {"name": o.name, "type": "String", "description": o.description} for o, _ in strings
        ],
        "implementation": {"container": {"image": image, "command": command, "args": args}},
    }


def builder_component(image: str = "", build_engine: str = "none") -> dict[str, Any]:
    """The builder component of one variant; its container's privileges are the pipeline's to
    set (kfp-kubernetes), as a component spec has no securityContext."""
    variant = builder_variant(build_engine)
    spec = component_spec(BUILDER, variant.image(image))
    spec["name"] = variant.name.replace("-", "_")
    spec["description"] = f"{BUILDER.description} {variant.why}"
    return spec


def runtime_component() -> dict[str, Any]:
    return component_spec(RUNTIME, RUNTIME_IMAGE_PLACEHOLDER)


def component_texts(image: str = "", build_engine: str = "none") -> dict[str, str]:
    """Every builder variant's component (`image` replaces the one of `build_engine`), and the
    runtime's: {file name: YAML}."""
    texts = {}
    for variant in BUILDER_VARIANTS:
        component = builder_component(
            image if variant.engine == build_engine else "", variant.engine
        )
        texts[component["name"]] = yaml.safe_dump(component, sort_keys=False)
    texts["mlflow_runtime"] = yaml.safe_dump(runtime_component(), sort_keys=False)
    return texts

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
from mlflow_steps.components.steps import (
    BUILDER,
    BUILDER_VARIANTS,
    INDEX_INPUTS,
    RUNTIME,
    SPLIT_ENGINES,
    builder_variant,
)

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
    set (kfp-kubernetes), as a component spec has no securityContext. A split variant's
    (Kaniko) is its install container: it takes the `downloads` artifact of
    `download_component`, no index setting and no registry credential, and writes its image as
    the OCI image layout artifact `layout`, which `push_component` pushes
    (components/builder/backends/split.py)."""
    variant = builder_variant(build_engine)
    spec = component_spec(BUILDER, variant.image(image))
    spec["name"] = variant.name.replace("-", "_")
    spec["description"] = f"{BUILDER.description} {variant.why}"
    if variant.engine in SPLIT_ENGINES:
        split_component(spec, "install")
        spec["description"] += (
            " Builds from the `downloads` of its download component into the OCI image layout "
            "`layout`, with no index setting or Secret and no registry credential; its push "
            "component pushes it."
        )
    return spec


def download_component(image: str = "", build_engine: str = "kaniko") -> dict[str, Any]:
    """A split variant's download container (`mlflow_builder_kaniko_download`): the index
    settings and Secret are its alone; it only downloads, into its `downloads` artifact."""
    variant = builder_variant(build_engine)
    spec = component_spec(BUILDER, variant.image(image))
    spec["name"] = variant.name.replace("-", "_") + "_download"
    spec["description"] = (
        "The download phase of the Kaniko builder: plans the build, and downloads the "
        "environment's files with the index settings (nothing downloaded runs) into "
        "`downloads`, for the builder component, which gets no index setting."
    )
    split_component(spec, "download")
    return spec


def push_component(image: str = "", build_engine: str = "kaniko") -> dict[str, Any]:
    """A split variant's push container (`mlflow_builder_kaniko_push`): the same image, Kaniko
    not running; the registry credentials are its (and the download component's) alone. It
    pushes the builder component's `layout` (checked as hostile input) to the tag of
    `downloads`' job, attaches the SBOM and gives the builder's outputs (image, digest)."""
    variant = builder_variant(build_engine)
    spec = component_spec(BUILDER, variant.image(image))
    spec["name"] = variant.name.replace("-", "_") + "_push"
    spec["description"] = (
        "The push phase of the Kaniko builder: pushes the OCI image layout the builder "
        "component wrote, with the registry credentials, which the builder component never "
        "gets; outputs the image reference and its digest."
    )
    split_component(spec, "push")
    return spec


ARTIFACTS = {
    "downloads": "The download component's `downloads`.",
    "layout": "The builder component's `layout` (an OCI image layout).",
}


def split_component(spec: dict[str, Any], phase: str) -> None:
    """`--phase PHASE --downloads {path}` in place: the download component writes the
    artifact (`outputPath`); the install component reads it (`inputPath`), loses the index
    inputs and the string outputs, and writes `layout`; the push component reads both,
    loses the index inputs and keeps the string outputs."""
    container = spec["implementation"]["container"]
    args = container["args"]
    if phase in ("download", "install"):
        strings = {o["name"] for o in spec["outputs"]}
        kept: list[Any] = []
        for arg in args:
            if isinstance(arg, dict) and arg.get("outputPath") in strings:
                kept.pop()  # its flag
                continue
            kept.append(arg)
        args[:] = kept
    if phase == "download":
        spec["outputs"] = [
            {"name": "downloads", "type": "Artifact", "description": "The downloaded files."}
        ]
        args += ["--phase", "download", "--downloads", {"outputPath": "downloads"}]
        return
    index_flags = {BUILDER.input(name).flag for name in INDEX_INPUTS}
    kept = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if isinstance(arg, str) and arg in index_flags:
            skip = True
            continue
        kept.append(arg)
    args[:] = kept
    spec["inputs"] = [i for i in spec["inputs"] if i["name"] not in INDEX_INPUTS]
    read = ["downloads"] if phase == "install" else ["downloads", "layout"]
    for position, name in enumerate(read, start=1):
        spec["inputs"].insert(
            position, {"name": name, "type": "Artifact", "description": ARTIFACTS[name]}
        )
    args += ["--phase", phase, "--downloads", {"inputPath": "downloads"}]
    if phase == "install":
        spec["outputs"] = [
            {"name": "layout", "type": "Artifact", "description": "The image, an OCI image layout."}
        ]
        args += ["--layout", {"outputPath": "layout"}]
    else:
        args += ["--layout", {"inputPath": "layout"}]


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
        if variant.engine in SPLIT_ENGINES:
            for make in (download_component, push_component):
                component = make(image if variant.engine == build_engine else "", variant.engine)
                texts[component["name"]] = yaml.safe_dump(component, sort_keys=False)
    texts["mlflow_runtime"] = yaml.safe_dump(runtime_component(), sort_keys=False)
    return texts

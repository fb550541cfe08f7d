"""The FuseML workflows, parsed back, are what the seed page shows, apart from the builder
image, the builder's output name in train_mlflow_model (fixed: named as referenced), the
builder's `package-index` extension (the indexes' credentials, issue 14) and the `context`
input (a codeset in a subfolder of the workspace, issue 15), passed to every step."""

from __future__ import annotations

import copy
import re
import textwrap
from pathlib import Path

import yaml

from mlflow_steps.generators.fuseml import INDEX_EXTENSION, files
from tests.support.require import require

SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "fuseml-mlflow-builder.txt"


def seed_workflows() -> dict[str, dict]:
    require(SEED.exists(), f"needs the seed page at {SEED}")
    text = SEED.read_text()
    found = {}
    for name in ("build_mlflow_env", "train_mlflow_model"):
        start = text.rindex("\n", 0, text.index(f"name: {name}")) + 1
        block = text[start:].split("\n\n")[0]  # the YAML ends at the first blank line
        found[name] = yaml.safe_load(textwrap.dedent(block))
    return found


def test_parsed_back_equals_the_seed_page_but_for_image_output_index_and_context():
    seed = seed_workflows()
    generated = {
        k.removesuffix(".yaml"): yaml.safe_load(yaml.safe_dump(v)) for k, v in files().items()
    }
    for name, expected in seed.items():
        ours = copy.deepcopy(generated[name])
        for step in ours["steps"] + expected["steps"]:
            if step["name"] == "builder":
                step["image"] = "<builder image>"
        assert ours["steps"][0].pop("extensions") == [INDEX_EXTENSION]
        (context,) = [i for i in ours["inputs"] if i["name"] == "context"]
        assert context["default"] == "." and context["type"] == "string"
        ours["inputs"].remove(context)
        for step in ours["steps"]:
            passed = {"name": "context", "value": "{{ inputs.context }}"}
            assert passed in step["inputs"], step["name"]
            step["inputs"].remove(passed)
        if name == "train_mlflow_model":
            assert expected["steps"][0]["outputs"] == [{"name": "mlflow-runtime"}]
            assert ours["steps"][0]["outputs"] == [{"name": "image"}]
            expected["steps"][0]["outputs"] = ours["steps"][0]["outputs"]
        assert ours == expected


def test_builder_output_is_named_as_it_is_referenced():
    workflow = files()["train_mlflow_model.yaml"]
    builder, trainer = workflow["steps"]
    ref = re.fullmatch(r"\{\{ steps\.(\w+)\.outputs\.([\w-]+) \}\}", trainer["image"])
    assert ref and ref.group(1) == builder["name"]
    assert ref.group(2) in {o["name"] for o in builder["outputs"]}


def test_builder_image_is_the_projects_own_and_configurable():
    assert "mlflow-builder" in files()["build_mlflow_env.yaml"]["steps"][0]["image"]
    assert files("my.registry/b@sha256:00")["train_mlflow_model.yaml"]["steps"][0]["image"] == (
        "my.registry/b@sha256:00"
    )

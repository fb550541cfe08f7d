"""The engines' schemas from ../shared/schemas (Tekton v1 CRDs, Argo's JSON schema), with unknown
fields rejected as `kubectl apply` does. Missing schemas fail in CI and skip elsewhere."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.support.require import require

# ../shared/schemas beside the checkout; MLFLOW_STEPS_SCHEMAS names another place (a worktree).
SCHEMAS = Path(
    os.environ.get(
        "MLFLOW_STEPS_SCHEMAS", Path(__file__).resolve().parents[2].parent / "shared" / "schemas"
    )
)


def closed(schema: Any) -> Any:
    """Objects that declare `properties` (and do not preserve unknown fields) become closed."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if (
        "properties" in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in schema
    ):
        out["additionalProperties"] = False
    return out


@cache
def tekton_schema(kind: str) -> dict:
    path = SCHEMAS / "tekton" / f"300-{kind.lower()}.yaml"
    require(path.exists(), f"needs {path} (the Tekton v1 CRDs in ../shared/schemas)")
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") == "CustomResourceDefinition":
            for version in doc["spec"]["versions"]:
                if version["name"] == "v1":
                    return closed(version["schema"]["openAPIV3Schema"])
    raise AssertionError(f"no v1 schema in {path}")


@cache
def argo_schema() -> dict:
    path = SCHEMAS / "argo" / "schema.json"
    require(path.exists(), f"needs {path} (argo-workflows' JSON schema in ../shared/schemas)")
    return json.loads(path.read_text())


@cache
def argo_validator_schema(kind: str) -> dict:
    """A schema for one Argo kind, its definitions closed like the Tekton ones."""
    definitions = {k: closed(v) for k, v in argo_schema()["definitions"].items()}
    return {
        "$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}",
        "definitions": definitions,
    }

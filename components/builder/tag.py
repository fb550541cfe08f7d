"""The image tag: a checksum of the install plan, everything that decides the environment.

Hashed, as canonical JSON (sorted keys, no whitespace), so the tag is the same on every machine
and Python version: the builder's version, the environment's normal form (see
`requirements.py` and `environments.py`) with the env manager of a conda.yaml, the Dockerfile
rendered from the plan, the SHA-256 of every file the plan ships, the base image and the build
arguments. The project's code is not hashed: it is mounted at run time. The uv binary that
speeds installs up is not hashed either.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from mlflow_steps import __version__

from .plan import InstallPlan

TAG_LENGTH = 24


def environment_tag(plan: InstallPlan, dockerfile: str, build_args: Mapping[str, str]) -> str:
    """24 hex digits of SHA-256 over the plan, `dockerfile` (rendered from it) and the index
    settings (`build_args`)."""
    environment = dict(plan.environment)
    payload: dict[str, Any] = {"builder": __version__}
    if "env_manager" in environment:  # hashed beside the environment, as before the plan
        payload["env_manager"] = environment.pop("env_manager")
    payload.update(
        environment=environment,
        dockerfile=dockerfile,
        files={name: sha256(data) for name, data in sorted(plan.files.items())},
        base_image=plan.base_image,
        build_args=dict(build_args),
    )
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return sha256(text.encode())[:TAG_LENGTH]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

"""The image tag: a checksum of the install plan, everything that decides the environment.

Hashed, as canonical JSON (sorted keys, no whitespace), so the tag is the same on every machine
and Python version: the builder's version, the environment's normal form (see
`requirements.py` and `environments.py`) with the env manager of a conda.yaml, the Dockerfile
rendered from the plan (its FROM line pinned to the base's digest), the SHA-256 of every file
the plan ships, the base image as named and the digest it resolved to, and the index settings
without their credentials (`IndexSettings.public`: rotating a token never changes the tag).
The project's code is not hashed: it is mounted at run time. The uv binary that speeds installs
up is not hashed either.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from mlflow_steps import __version__

from .plan import InstallPlan

TAG_LENGTH = 24


def environment_tag(
    plan: InstallPlan,
    dockerfile: str,
    index: Mapping[str, str],
    base_digest: str = "",
    platforms: tuple[str, ...] = (),
) -> str:
    """24 hex digits of SHA-256 over the plan, `dockerfile` (rendered from it), the public
    index settings (`index`: PIP_* without user information), the base's manifest digest
    ("" where no base is pulled: the local engine; its image index's for a multi-platform
    base) and, for an image index, its `platforms` (`linux/arm64`; hashed only when given, so
    a single-platform tag is what it was before the input)."""
    environment = dict(plan.environment)
    payload: dict[str, Any] = {"builder": __version__}
    if "env_manager" in environment:  # hashed beside the environment, as before the plan
        payload["env_manager"] = environment.pop("env_manager")
    payload.update(
        environment=environment,
        dockerfile=dockerfile,
        files={name: sha256(data) for name, data in sorted(plan.files.items())},
        base_image=plan.base_image,
        base_digest=base_digest,
        index=dict(index),
    )
    if platforms:
        payload["platforms"] = list(platforms)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return sha256(text.encode())[:TAG_LENGTH]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

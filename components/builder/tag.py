"""The image tag: a checksum of everything that decides the environment.

Hashed, as canonical JSON (sorted keys, no whitespace), so the tag is the same on every machine
and Python version: the builder's version, the environment's normal form (see
`requirements.py` and `environments.py`), the rendered Dockerfile, the SHA-256 of every file of
the build context, the base image and the build arguments. The project's code is not hashed:
it is mounted at run time. The uv binary that speeds installs up is not hashed either.
"""

from __future__ import annotations

import hashlib
import json

from mlflow_steps import __version__

from .environments import Environment, canonical_json
from .options import BuildOptions
from .recipe import Recipe

TAG_LENGTH = 24


def environment_tag(env: Environment, recipe: Recipe | None, options: BuildOptions) -> str:
    payload = {
        "builder": __version__,
        "environment": json.loads(canonical_json(env)),
    }
    if env.kind == "conda":
        payload["env_manager"] = options.env_manager
    if recipe is not None:
        payload.update(
            dockerfile=recipe.dockerfile,
            files={name: sha256(data) for name, data in sorted(recipe.files.items())},
            base_image=recipe.base_image,
            index=options.index().public(),
        )
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return sha256(text.encode())[:TAG_LENGTH]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

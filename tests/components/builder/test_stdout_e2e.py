"""A cold build, as a fresh machine makes it, prints its output alone on stdout, in each
layering: the repository is new (so is its layer cache, `<namespace>/mlflow-steps-layers`),
nothing of it is in the registry, and every layer is installed, compiled and pushed here.
A warm machine hides a stray stdout line: layers already cached are mounted, never compiled.
All real: buildah, the test registry and index, the debootstrapped base."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.support.builds import local_build_argv
from tests.support.images import BUILDAH_ENV
from tests.support.oci import registry_digest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("layering", ["per-package", "single"])
def test_a_cold_build_prints_the_image_alone_on_stdout(
    layering, registry, package_index, base_images, tmp_path
):
    codeset = tmp_path / "codeset"
    codeset.mkdir()
    (codeset / "MLproject").write_text("entry_points: {main: {command: python -c 'import six'}}\n")
    (codeset / "requirements.txt").write_text("six==1.17.0\npackaging\n")
    repository = f"cold-{uuid.uuid4().hex[:12]}/trainer"  # nothing of it in the registry
    out = tmp_path / "image"
    argv = local_build_argv(codeset, registry.host, base=base_images["debian"],
                            index_url=package_index.extra["url"], repository=repository,
                            output=out)  # fmt: skip
    argv += ["--mlflow-requirement", "", f"--layering={layering}"]
    done = subprocess.run(argv, capture_output=True, text=True, env=BUILDAH_ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    image = out.read_text()
    assert image.startswith(f"{registry.host}/{repository}:")
    assert done.stdout == image + "\n", done.stdout[-3000:]  # the one output line, nothing else
    assert "not in the registry: building" in done.stderr
    # The progress lines of a cold build went to stderr: the bytecode compiled here...
    assert "mlflow-steps: bytecode for" in done.stderr
    # ... and the layering asked for is the one that ran.
    assert ("per-package layers: uploaded" in done.stderr) == (layering == "per-package")
    assert registry_digest(image).startswith("sha256:")

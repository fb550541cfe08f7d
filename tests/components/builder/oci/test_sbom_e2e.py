"""The SBOM of a real build: buildah builds the pylock case on the Debian base against the
local index and pushes it to Debian's registry; the document is in the image next to the lock,
attached to the pushed manifest (referrers tag schema), and `inspect --sbom` prints it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_steps.components.builder.oci import referrers, sbom
from mlflow_steps.components.builder.oci.registry import RegistryClient
from mlflow_steps.components.builder.oci.registry_push import RegistryWriter
from tests.support import images
from tests.support.builds import build_with_cli, run_in_image
from tests.support.images import BUILDAH_ENV

pytestmark = pytest.mark.e2e
CASES = Path(__file__).resolve().parents[3] / "cases"


def test_the_image_carries_its_sbom_and_the_registry_serves_it(
    registry, package_index, base_images, tmp_path
):
    out = tmp_path / "image"
    flags = ["--mlflow-requirement", "", "--compile-bytecode=false"]
    base = base_images["debian"]
    codeset = CASES / "pylock"
    done = build_with_cli(codeset, registry, package_index, base, out, *flags)
    assert done.returncode == 0, done.stderr[-4000:]
    image = out.read_text()
    digest = Path(f"{out}.digest").read_text().strip()
    try:
        kept = run_in_image(image, "cat", sbom.SBOM_IN_IMAGE)
        assert kept.returncode == 0, kept.stderr
        bom = json.loads(kept.stdout)
        libraries = {(c["name"], c["version"]) for c in bom["components"] if c["type"] == "library"}
        assert libraries == {("six", "1.16.0")}
        writer = RegistryWriter(RegistryClient(registry.host, insecure=True))
        attached = referrers.find(writer, "e2e/trainer", digest, sbom.MEDIA_TYPE)
        assert attached.decode() == kept.stdout
        argv = [sys.executable, "-m", "mlflow_steps", "inspect", str(codeset), "--sbom"]
        argv += ["--registry", registry.host, "--pull-registry", "", "--insecure"]
        argv += ["--base-image", base, "--pip-index-url", package_index.extra["url"]]
        argv += ["--repository", "e2e/trainer", *flags]
        shown = subprocess.run(argv, capture_output=True, env=BUILDAH_ENV)
        assert shown.returncode == 0, shown.stderr[-2000:]
        assert shown.stdout == attached
    finally:
        images.remove_local_images(image)

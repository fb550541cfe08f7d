"""A one-package bump, engine-less, all real: the sklearn example with six 1.16.0 built into a
registry (its access log read), then six bumped to 1.17.0 into the same repository by a
fresh builder (an empty builder cache, as a new pod): what it asks the registry, and what it
pushes."""

from __future__ import annotations

import collections
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_steps.components.builder.oci import referrers, sbom
from mlflow_steps.components.builder.oci.registry import RegistryClient
from mlflow_steps.components.builder.oci.registry_push import RegistryWriter
from mlflow_steps.stack import build_argv
from tests.support.images import BUILDAH_ENV, remove_local_images
from tests.support.oci import manifest_and_config

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[5]
REPOSITORY = "bump/sklearn"


def build(codeset: Path, registry, index, base: str, out: Path, cache: Path):
    argv = build_argv(codeset, registry.host, base=base, index_url=index.extra["url"],
                      repository=REPOSITORY, output=out)  # fmt: skip
    argv[0] = sys.executable
    argv[argv.index("--engine") + 1] = "none"
    env = {**BUILDAH_ENV, "XDG_CACHE_HOME": str(cache)}
    done = subprocess.run([*argv, "--digest-output", f"{out}.digest"], capture_output=True,
                          text=True, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return out.read_text(), done.stderr


def sklearn_with_six(tmp_path: Path, six: str) -> Path:
    codeset = tmp_path / f"six-{six}"
    shutil.copytree(ROOT / "examples" / "sklearn-pip", codeset)
    with (codeset / "requirements.txt").open("a") as handle:
        handle.write(f"six=={six}\n")
    return codeset


@pytest.fixture(scope="module")
def bumped(registry, package_index, base_images, tmp_path_factory):
    """(the image before, the bumped image, the bump's log, the bump's registry requests)."""
    tmp = tmp_path_factory.mktemp("bump")
    before, _ = build(sklearn_with_six(tmp, "1.16.0"), registry, package_index,
                      base_images["debian"], tmp / "before", tmp / "cache-before")  # fmt: skip
    since = len(registry.requests_seen())
    after, log = build(sklearn_with_six(tmp, "1.17.0"), registry, package_index,
                       base_images["debian"], tmp / "after", tmp / "cache-after")  # fmt: skip
    yield before, after, log, registry.requests_seen()[since:]
    remove_local_images(before, after)


def test_a_bump_rebuilds_only_the_bumped_distribution_and_keeps_every_other_layer(bumped):
    """The bump's image: the layers of the image before, mounted, except six's and the lock's
    (written again); the look-ups and mounts running at once change nothing of it."""
    before, after, log, _ = bumped
    assert "1 to install: six 1.17.0" in log
    (old, old_config), (new, new_config) = manifest_and_config(before), manifest_and_config(after)
    names = [entry["created_by"] for entry in new_config["history"]][-len(new["layers"]) :]
    assert [entry["created_by"] for entry in old_config["history"]][-len(old["layers"]) :] == [
        name.replace("six 1.17.0", "six 1.16.0") for name in names
    ]
    changed = [name for name, a, b in zip(names, old["layers"], new["layers"]) if a != b]
    assert changed == ["mlflow-steps: six 1.17.0", "mlflow-steps: lock"]


def test_a_bump_asks_for_each_cached_layer_once_and_mounts_each_once(bumped):
    """Every layer-cache record is read once (a unit the builder installs has the same
    identity both ways: it was read twice), and each reused layer is mounted once."""
    _, _, log, seen = bumped
    cache_reads = collections.Counter(
        line for line in seen if line.startswith("GET /v2/bump/mlflow-steps-layers/manifests/")
    )
    assert cache_reads and max(cache_reads.values()) == 1, cache_reads
    mounts = [line for line in seen if line.startswith(f"POST /v2/{REPOSITORY}/blobs/uploads/")]
    counts = re.search(r"(\d+) layers for \d+ distributions, (\d+) already in the registry "
                       r"\(mounted\), (\d+) to install", log)  # fmt: skip
    assert counts, log
    units, reused, missing = map(int, counts.groups())
    assert (missing, reused) == (1, units - 1)  # six's layer only; every other one reused
    # one mount per reused layer, one for the venv skeleton; plus one POST per upload
    uploads = sum(line.startswith(f"PUT /v2/{REPOSITORY}/blobs/uploads/") for line in seen)
    assert len(mounts) <= reused + 1 + uploads + 1, seen
    # the whole bump: well under one request per distribution and layer twice over
    assert len(seen) <= 2 * reused + 40, seen


def test_the_bumped_images_sbom_refers_to_its_manifest_as_pushed(bumped, registry):
    """The referrer's subject is written from the manifest the build put (not read back):
    its digest, media type and size are the registry's."""
    _, after, _, _ = bumped
    writer = RegistryWriter(RegistryClient(registry.host, insecure=True))
    manifest, media_type, digest = writer.get_manifest(REPOSITORY, after.rpartition(":")[2])
    (listed,) = referrers.referrers(writer, REPOSITORY, digest, sbom.MEDIA_TYPE)
    referrer = json.loads(writer.get_manifest(REPOSITORY, listed["digest"])[0])
    assert referrer["subject"] == {"mediaType": media_type, "digest": digest,
                                   "size": len(manifest)}  # fmt: skip
    document = json.loads(referrers.find(writer, REPOSITORY, digest, sbom.MEDIA_TYPE))
    assert {"six": "1.17.0"}.items() <= {c["name"]: c["version"]
                                         for c in document["components"]}.items()  # fmt: skip

"""The base an engine-less build reads is the one its tag hashes: the plan pins the base's
digest (one HEAD request), and the build reads the base at that digest, so a base tag that
moves between the two (or a registry answering the HEAD and the GET differently) never puts
another base's files under the tag. Real registry (its base tag moved with skopeo), real
pypiserver with one wheel, the debootstrapped bases; found by this round's attack review."""

from __future__ import annotations

import json
import subprocess

from mlflow_steps.components.builder import build
from mlflow_steps.components.builder.backends.layered.image import Reference, fetch_base
from mlflow_steps.components.builder.oci.registry import RegistryClient
from mlflow_steps.components.builder.oci.registry_push import RegistryWriter
from mlflow_steps.components.builder.planning.options import BuildOptions
from tests.support import packages, services
from tests.support.require import require_tools


def copy(source: str, destination: str) -> None:
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
         f"docker://{source}", f"docker://{destination}"],
        check=True, capture_output=True,
    )  # fmt: skip


def test_the_base_is_read_at_the_digest_the_tag_hashes(registry, base_images, tmp_path):
    require_tools("skopeo")
    wheels = tmp_path / "wheels"
    packages.wheel(wheels, "stepsdemo-one", "1.0")
    index = services.start_index(wheels, tmp_path / "index")
    try:
        moving = f"{registry.host}/moving-base:latest"
        copy(base_images["python"], moving)
        codeset = tmp_path / "codeset"
        codeset.mkdir()
        (codeset / "requirements.txt").write_text("stepsdemo-one==1.0\n")
        (codeset / "train.py").write_text("import stepsdemo_one\n")
        options = BuildOptions(
            registry=registry.host, pull_registry="", repository="pinned/env",
            base_image=moving, engine="none", insecure=True, env_manager="uv",
            pip_index_url=index.extra["url"], mlflow_requirement="",
        )  # fmt: skip
        the_plan = build.plan(codeset, options, build.base_resolver(options))
        assert the_plan.base is not None and the_plan.base.digest.startswith("sha256:")
        copy(base_images["debian"], moving)  # the tag moves after the plan pinned it
        writer = RegistryWriter(RegistryClient(registry.host, insecure=True))
        planned = fetch_base(writer, Reference.parse(moving).at(the_plan.base.digest), "x86_64")
        moved = fetch_base(writer, Reference.parse(moving), "x86_64")
        assert [d.digest for d in planned.layers] != [d.digest for d in moved.layers]

        digest = build.run_build(the_plan, options, lambda message: None)

        found = writer.get_manifest("pinned/env", digest)
        assert found is not None
        layers = [layer["digest"] for layer in json.loads(found[0])["layers"]]
        base_layers = [d.digest for d in planned.layers]
        assert layers[: len(base_layers)] == base_layers
    finally:
        index.stop()

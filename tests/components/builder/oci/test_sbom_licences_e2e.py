"""Licences in the bill of materials, all real: a pypiserver index (with htpasswd) of wheels
written here (one per licence source, and a hostile one whose licence fields are 1 MiB with
control characters) and real ones of the test wheelhouse, the registry, the Debian base.

The engine-less builder builds the environment cold, then again into another repository of the
namespace, where every layer is reused from the layer cache; `inspect --sbom` for a repository
without the image prints the document the single-layer recipe would write. All three are the
same bytes (and the copy in the image), validate against CycloneDX 1.5, and their licences are
what each wheel file's METADATA says; the reused build takes them from the layer cache's
records, reading no wheel from the index (its access log)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from mlflow_steps.components.builder.oci import referrers, sbom
from mlflow_steps.components.builder.oci.registry import RegistryClient
from mlflow_steps.components.builder.oci.registry_push import RegistryWriter
from mlflow_steps.components.builder.planning.plan import LOCK_IN_IMAGE
from mlflow_steps.components.builder.planning.resolution import read_pylock
from tests.components.builder.backends.layered.test_engineless_e2e import (
    engineless_argv,
    small_codeset,
)
from tests.components.builder.planning.test_core_metadata import (
    REAL,
    expected_licences,
    made_wheels,
)
from tests.support import images, services
from tests.support.images import BUILDAH_ENV
from tests.support.oci import pushed_image
from tests.support.require import require_tools

pytestmark = pytest.mark.e2e
USERS = {"carol": "c4rol/lic@token"}


def lock_layer(image: str) -> dict[str, bytes]:
    """{path: bytes} of the files of the image's last layer (the lock and the SBOM), as the
    registry serves it."""
    blobs = pushed_image(image)
    last = json.loads(blobs["manifest"])["layers"][-1]["digest"]
    with tarfile.open(fileobj=io.BytesIO(blobs[last])) as layer:
        return {
            "/" + member.name.lstrip("./"): layer.extractfile(member).read()  # type: ignore[union-attr]
            for member in layer.getmembers()
            if member.isfile()
        }


def licence_reads(index) -> list[str]:
    """The index's access log lines of wheel reads by the builder's own HTTP client (its
    licence reads: uv says `uv/`, and a build that installs nothing downloads nothing), once
    the log has not grown for 0.5 s (gunicorn writes a line as each answer ends)."""
    size = -1
    while size != index.log.stat().st_size:
        size = index.log.stat().st_size
        time.sleep(0.5)
    lines = index.log.read_text(errors="replace").splitlines()
    return [line for line in lines if "/packages/" in line and "python-requests/" in line]


def test_cold_reused_and_single_layer_documents_are_the_same_with_the_wheels_licences(
    registry, base_images, tmp_path
):
    require_tools("htpasswd")
    folder = tmp_path / "wheels"
    wheels = made_wheels(folder)
    for prefix in REAL[:2]:  # six and packaging
        (real,) = sorted(images.wheelhouse().glob(f"{prefix}*.whl"))[:1]
        os.link(real, folder / real.name)
        wheels.append(folder / real.name)
    index = services.start_index(folder, tmp_path / "index", users=USERS)
    names = ["six==1.16.0", "packaging", "lic-spdx", "lic-field", "lic-classified", "lic-none",
             "lic-hostile"]  # fmt: skip
    codeset = small_codeset(tmp_path / "codeset", *names)
    namespace = "lic-" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:10]
    password = quote(USERS["carol"], safe="")
    index.extra["url"] = index.extra["url"].replace("http://", f"http://carol:{password}@")
    flags = ["--mlflow-requirement", "", "--resolve", "true", "--pip-trusted-host", "127.0.0.1"]
    env = {**BUILDAH_ENV, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    writer = RegistryWriter(RegistryClient(registry.host, insecure=True))
    documents, logs, locks, reads = {}, {}, {}, {}
    try:
        for name in ("cold", "reused"):
            before = len(licence_reads(index))
            out = tmp_path / f"{name}.image"
            argv = engineless_argv(codeset, registry, index, base_images["debian"],
                                   f"{namespace}/{name}", out)  # fmt: skip
            done = subprocess.run([*argv, *flags], capture_output=True, text=True, env=env)
            assert done.returncode == 0, done.stderr[-4000:]
            assert "engine-less:" in done.stderr
            digest = Path(f"{out}.digest").read_text().strip()
            attached = referrers.find(writer, f"{namespace}/{name}", digest, sbom.MEDIA_TYPE)
            files = lock_layer(out.read_text())
            assert files[sbom.SBOM_IN_IMAGE] == attached
            locks[name] = files[LOCK_IN_IMAGE].decode()
            documents[name], logs[name] = attached, done.stderr
            reads[name] = licence_reads(index)[before:]
        assert "0 to install" in logs["reused"] and "0 to install" not in logs["cold"]
        # The reused layers' records carry their wheels' licences: none is read again.
        assert len(reads["cold"]) >= len(names)
        assert reads["reused"] == [], "\n".join(reads["reused"])
        argv = [sys.executable, "-m", "mlflow_steps", "inspect", str(codeset), "--sbom"]
        argv += ["--registry", registry.host, "--pull-registry", "", "--insecure"]
        argv += ["--base-image", base_images["debian"], "--pip-index-url", index.extra["url"]]
        argv += ["--repository", f"{namespace}/never-built", *flags]
        shown = subprocess.run(argv, capture_output=True, env=env)
        assert shown.returncode == 0, shown.stderr[-3000:]
        documents["single-layer recipe"] = shown.stdout
    finally:
        index.stop()
    assert documents["cold"] == documents["reused"] == documents["single-layer recipe"]
    data = documents["cold"].decode()
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(data) is None
    assert USERS["carol"] not in data and password not in data
    bom = json.loads(data)
    libraries = {c["name"]: c for c in bom["components"] if c["type"] == "library"}
    assert locks["cold"] == locks["reused"]
    assert set(libraries) == {dist.name for dist in read_pylock(locks["cold"], "the lock")}
    found = {name: c["licenses"] for name, c in libraries.items() if "licenses" in c}
    expected = expected_licences(wheels)
    assert found == {name: expected[name] for name in libraries if name in expected}
    assert found["lic-spdx"] == [{"expression": "Apache-2.0 OR MIT"}] and "lic-none" not in found
    (hostile,) = found["lic-hostile"]
    assert len(hostile["license"]["name"]) == sbom.LICENCE_LIMIT and len(data) < 64_000

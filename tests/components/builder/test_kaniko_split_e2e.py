"""The Kaniko variant's two containers (components/builder/backends/split.py), with buildah standing
in for Kaniko (Kaniko cannot run here), all else real: the local registry, pypiserver with
htpasswd (an index of this test's own, stopped between the phases), the debootstrapped base.

1. `split.prepare` plans the build and writes the two Dockerfiles; the DOWNLOAD-phase
   Dockerfile is built with the index secret, its RUN copying the downloaded files into the
   shared folder (a `--volume` here; the Kaniko executor's own filesystem there).
2. The index is stopped. `mlflow-steps build --phase install --downloads DIR` builds and
   pushes from the shared folder with no secret, no index setting and no index to reach. A
   path requirement whose setup.py records what it saw is built there, and only there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from mlflow_steps.components.builder.backends import split
from mlflow_steps.components.builder.build import base_resolver, plan
from mlflow_steps.components.builder.planning.indexes import SECRET_ID, secret_files
from mlflow_steps.components.builder.planning.options import BuildOptions
from tests.conftest import INDEX_USERS
from tests.support import images, services
from tests.support.images import BUILDAH_ENV, remove_local_images
from tests.support.oci import pushed_image

from .test_index_secrets_e2e import forms, small_codeset
from .test_untrusted_codeset import credentialed
from .test_untrusted_codeset_e2e import SETUP, member_names

pytestmark = pytest.mark.e2e


def test_the_install_container_builds_offline_from_the_downloaded_files(
    registry, base_images, tmp_path
):
    index = services.start_index(images.wheelhouse(), tmp_path / "index", users=INDEX_USERS)
    stopped = False
    try:
        url, password = credentialed(index.extra["url"])
        codeset = small_codeset(tmp_path / "codeset", "six==1.17.0")
        (codeset / "vendor" / "spy").mkdir(parents=True)
        (codeset / "vendor" / "spy" / "setup.py").write_text(SETUP)
        with (codeset / "requirements.txt").open("a") as handle:
            handle.write("./vendor/spy\n")
        options = BuildOptions(
            registry=registry.host,
            pull_registry="",
            repository="split/trainer",
            base_image=base_images["debian"],
            engine="kaniko",
            layering="single",
            insecure=True,
            pip_index_url=url,
            pip_trusted_host="127.0.0.1",
            mlflow_requirement="",
            compile_bytecode=False,
        )
        downloads = tmp_path / "downloads"
        job = split.prepare(codeset, options, downloads)
        # One tag whatever the engine: the split build's is the one-phase build's.
        assert job["tag"] == plan(codeset, options, base_resolver(options)).tag
        dockerfile = (downloads / "download" / "Dockerfile").read_text()
        assert dockerfile.count(f"--mount=type=secret,id={SECRET_ID}") == 1
        assert "install-python-env.sh" not in dockerfile
        context_dockerfile = (downloads / "context" / "Dockerfile").read_text()
        assert "--mount=type=secret" not in context_dockerfile
        assert "download-python-env" not in context_dockerfile
        export = downloads / "context" / "mlflow-steps"
        scratch = f"localhost/mlflow-steps-split-download:{uuid.uuid4().hex[:12]}"
        with secret_files(options.index()) as secrets:
            argv = ["buildah", "build", "--tls-verify=false", "--layers=false"]
            argv += [f"--secret=id={SECRET_ID},src={secrets[SECRET_ID]}"]
            argv += [f"--volume={export}:{export}", f"--tag={scratch}"]
            argv += [f"--file={downloads / 'download' / 'Dockerfile'}", str(downloads / "context")]
            fetched = subprocess.run(argv, capture_output=True, text=True, env=BUILDAH_ENV)
        remove_local_images(scratch)
        assert fetched.returncode == 0, fetched.stderr[-3000:]
        wheels = sorted(p.name for p in (export / "wheels").iterdir())
        assert any(name.startswith("six-1.17.0-") for name in wheels)
        assert any(name.startswith("setuptools-") for name in wheels)  # for the path requirement
        split.write_job(downloads, job)
        index.stop()
        stopped = True
        # The install container: no index setting, no netrc, no secret; the index is gone.
        environ = {
            k: v
            for k, v in BUILDAH_ENV.items()
            if not k.startswith(("PIP_", "UV_", "FUSEML_PIP", "MLFLOW_STEPS_INDEX"))
        }
        out = tmp_path / "image"
        argv = [sys.executable, "-m", "mlflow_steps", "build", str(codeset)]
        argv += ["--registry", registry.host, "--pull-registry", "", "--insecure"]
        argv += ["--repository", "split/trainer", "--engine", "buildah", "--verbose"]
        argv += ["--phase", "install", "--downloads", str(downloads), "--output", str(out)]
        done = subprocess.run(argv, capture_output=True, text=True, env=environ)
    finally:
        if not stopped:
            index.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--secret" not in done.stderr  # buildah was given none
    image = out.read_text()
    assert image == options.push_reference(job["tag"])
    blobs = pushed_image(image)
    spied = [data for data in blobs.values() if b"spy/__init__.py" in data]
    assert spied, "the path requirement was not built in the install container"
    assert b'"secret": ""' in spied[0] and b"PIP_INDEX_URL" not in spied[0]
    names = member_names(blobs)
    assert any(name.endswith("site-packages/six.py") for name in names)
    assert not any("/tmp/mlflow-steps/" in f"/{name}" for name in names)  # downloads deleted
    config = json.loads(blobs["config"])
    history = " ".join(h.get("created_by", "") for h in config["history"])
    assert "install-python-env.sh" in history and SECRET_ID not in history
    for data in [*blobs.values(), done.stderr.encode(), done.stdout.encode()]:
        for secret in [*forms("alice"), password]:
            assert secret.encode() not in data
    remove_local_images(image)


def test_the_install_phase_refuses_to_start_without_the_download_phase(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mlflow_steps", "build", str(tmp_path), "--engine", "kaniko",
         "--phase", "install", "--downloads", str(tmp_path / "nothing")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0
    assert "must run first" in done.stderr and "Traceback" not in done.stderr


def test_the_phase_needs_an_absolute_shared_folder(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mlflow_steps", "build", str(tmp_path), "--phase", "install",
         "--downloads", "relative/dir"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode != 0 and "absolute folder" in done.stderr
    assert not (tmp_path / "relative").exists()  # nothing written

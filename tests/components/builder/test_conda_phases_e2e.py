"""A conda.yaml built into an image with buildah through the authenticated index (issue 23),
real but for conda: the local registry, pypiserver with htpasswd, the debootstrapped base,
buildah (chroot isolation). No miniconda image and no conda channel can be reached here, so
the base is the python base with a venv at /opt/conda standing in for conda's base
environment and a stand-in `conda` (FAKE_CONDA: it answers the dry run with the Python it
would link, "downloads" a package file into CONDA_PKGS_DIRS, and, offline, checks it is there).
The `pip:` section names a path requirement whose setup.py copies the environment and the
index secret file into the package it installs, so whatever it saw is pushed in the image.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import tempfile
from pathlib import Path

import pytest

from mlflow_steps.components.builder.backends.recipe import render
from mlflow_steps.components.builder.build import base_resolver
from mlflow_steps.components.builder.planning.indexes import SECRET_ID, secret_files
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.builder.reading.codeset import load_codeset
from tests.support.images import BUILDAH_ENV, remove_local_images, sh
from tests.support.oci import pushed_image

from .test_index_secrets_e2e import forms
from .test_untrusted_codeset import credentialed
from .test_untrusted_codeset_e2e import SETUP

pytestmark = pytest.mark.e2e

FAKE_CONDA = """#!/opt/conda/bin/python
import json, os, sys
args = sys.argv[1:]
pkgs = os.environ.get("CONDA_PKGS_DIRS", "")
if args[:1] == ["install"] and "--dry-run" in args:
    version = "%d.%d.1" % sys.version_info[:2]
    print(json.dumps({"actions": {"LINK": [{"name": "python", "version": version}]}}))
elif args[:1] == ["install"] and "--download-only" in args:
    open(os.path.join(pkgs, "fakepkg-1.0-0.tar.bz2"), "w").write("a conda package")
elif args[:1] == ["install"] and "--offline" in args:
    if not os.path.exists(os.path.join(pkgs, "fakepkg-1.0-0.tar.bz2")):
        sys.exit("fake conda: the package was not downloaded")
"""

CONDA_YAML = """\
channels:
  - conda-forge
dependencies:
  - python
  - pip
  - pip:
    - six==1.17.0
    - ./vendor/spy
"""


def fake_miniconda(base: str, registry) -> str:
    reference = f"{registry.host}/fake/miniconda3:1"
    script = base64.b64encode(FAKE_CONDA.encode()).decode()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Dockerfile").write_text(
            f"FROM {base}\n"
            "RUN python3 -m venv /opt/conda"
            f" && echo {script} | base64 -d > /opt/conda/bin/conda"
            " && chmod 755 /opt/conda/bin/conda\n"
            "ENV PATH=/opt/conda/bin:$PATH\n"
        )
        sh(
            "buildah", "build", "--tls-verify=false", "--tag", f"docker://{reference}", tmp,
            quiet=True,
        )  # fmt: skip
    return reference


def test_a_conda_pip_section_is_built_without_the_index_credentials(
    auth_index, registry, base_images, tmp_path
):
    url, password = credentialed(auth_index.extra["url"])
    base = fake_miniconda(base_images["debian"], registry)
    codeset = tmp_path / "codeset"
    (codeset / "vendor" / "spy").mkdir(parents=True)
    (codeset / "vendor" / "spy" / "setup.py").write_text(SETUP)
    (codeset / "MLproject").write_text(
        "conda_env: conda.yaml\nentry_points: {main: {command: x}}\n"
    )
    (codeset / "conda.yaml").write_text(CONDA_YAML)
    options = BuildOptions(
        registry=registry.host,
        env_manager="conda",
        insecure=True,
        pip_index_url=url,
        pip_trusted_host="127.0.0.1",
        mlflow_requirement="",
    )
    install = load_codeset(codeset).environment.install_plan(options)
    install = dataclasses.replace(install, base_image=base)
    pinned = base_resolver(options)(base)
    recipe = render(install, pinned)
    context = recipe.write_context(tmp_path / "context")
    image = f"{registry.host}/conda/trainer:split"
    with secret_files(options.index()) as secrets:
        argv = ["buildah", "build", "--tls-verify=false", "--format=oci", "--layers=false"]
        argv += [f"--secret=id={SECRET_ID},src={secrets[SECRET_ID]}", "--timestamp=0"]
        argv += [f"--tag=docker://{image}", str(context)]
        done = subprocess.run(argv, capture_output=True, text=True, env=BUILDAH_ENV)
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        blobs = pushed_image(image)
    finally:
        remove_local_images(image, base, pinned.pinned)  # FROM pulls it by digest
    spied = [data for data in blobs.values() if b"spy/__init__.py" in data]
    assert spied, "the path requirement was not built"
    assert b'"secret": ""' in spied[0] and b"PIP_INDEX_URL" not in spied[0]
    config = json.loads(blobs["config"])
    history = [h.get("created_by", "") for h in config["history"]]
    assert any("download-conda-env.sh" in h and SECRET_ID in h for h in history)
    assert any("install-conda-env.sh" in h and SECRET_ID not in h for h in history)
    for data in [*blobs.values(), done.stderr.encode(), done.stdout.encode()]:
        for secret in [*forms("alice"), password]:
            assert secret.encode() not in data

"""An image built through the authenticated index from a codeset that spies (issue 23 item 2),
all real: buildah (chroot isolation), the local registry, pypiserver with htpasswd, the
debootstrapped base. The codeset has a path requirement whose setup.py copies the environment
and the index secret file (if it can read it) into the package it installs, so whatever it saw
is pushed inside the image, and a wheel with a `.pth` file that would do the same at every
start of the venv's Python. The password must be in no blob of the pushed image, its config,
history, or the build's log."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from tests.support.oci import pushed_image

from .test_index_secrets_e2e import cli_build, forms, small_codeset
from .test_untrusted_codeset import credentialed, pth_wheel

pytestmark = pytest.mark.e2e

PTH_MARKER = "/opt/mlflow-env/pth-ran.json"
SECRET = "/run/secrets/mlflow-steps-index"

SETUP = """
import json, os
from setuptools import setup
try:
    with open("/run/secrets/mlflow-steps-index") as handle:
        secret = handle.read()
except OSError:
    secret = ""
os.makedirs("spy", exist_ok=True)
with open("spy/__init__.py", "w") as out:
    out.write("SAW = " + repr(json.dumps({"environ": dict(os.environ), "secret": secret})))
setup(name="spy", version="0.1", packages=["spy"])
"""


def member_names(blobs: dict[str, bytes]) -> list[str]:
    """The paths in every layer of the image (the config blob is not a tar)."""
    names: list[str] = []
    for data in blobs.values():
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                names += tar.getnames()
        except tarfile.TarError:
            continue
    return names


def test_a_spying_path_requirement_and_a_pth_wheel_push_no_credential(
    auth_index, registry, base_images, tmp_path
):
    codeset = small_codeset(tmp_path / "codeset", "six==1.17.0")
    (codeset / "vendor" / "spy").mkdir(parents=True)
    (codeset / "vendor" / "spy" / "setup.py").write_text(SETUP)
    # Were the .pth to run during the build, its marker would be in the environment's layer.
    wheel = pth_wheel(codeset / "vendor", PTH_MARKER, SECRET)
    with (codeset / "requirements.txt").open("a") as handle:
        handle.write(f"./vendor/spy\n./vendor/{wheel.name}\n")
    url, _ = credentialed(auth_index.extra["url"])
    out = tmp_path / "image"
    done = cli_build(codeset, registry, base_images["debian"], url, out)
    assert done.returncode == 0, done.stderr[-3000:]
    blobs = pushed_image(out.read_text())
    spied = [data for data in blobs.values() if b"spy/__init__.py" in data]
    assert spied, "the path requirement was not installed"
    assert b'"secret": ""' in spied[0] and b"PIP_INDEX_URL" not in spied[0]
    names = member_names(blobs)
    assert any(name.endswith("site-packages/evil.pth") for name in names)
    assert not any(name.endswith("pth-ran.json") for name in names)  # the .pth never ran
    config = json.loads(blobs["config"])
    history = [h.get("created_by", "") for h in config["history"]]
    assert any("download-python-env.sh" in h and "mlflow-steps-index" in h for h in history)
    assert any("install-python-env.sh" in h and "mlflow-steps-index" not in h for h in history)
    for name, data in blobs.items():
        for secret in forms("alice"):
            assert secret.encode() not in data, f"password found in {name}"
    for secret in forms("alice"):
        assert secret not in done.stdout + done.stderr

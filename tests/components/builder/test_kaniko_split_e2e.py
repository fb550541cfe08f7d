"""The Kaniko variant's three containers (components/builder/backends/split.py), with buildah
standing in for Kaniko (Kaniko cannot run here), all else real: the local registries (the push
one with htpasswd), pypiserver with htpasswd (an index of this test's own, stopped between the
phases), the debootstrapped base.

1. `split.prepare` plans the build and writes the two Dockerfiles; the DOWNLOAD-phase
   Dockerfile is built with the index secret, its RUN copying the downloaded files into the
   shared folder (a `--volume` here; the Kaniko executor's own filesystem there).
2. The index is stopped. `mlflow-steps build --phase install --downloads DIR` builds from
   the shared folder into an OCI image layout with no secret, no index setting, no index to
   reach and no registry credential; it sends the registry nothing. A path requirement whose
   setup.py records what it saw and looks for the registry password is built there, and only
   there.
3. `mlflow-steps build --phase push` pushes the layout with the registry's docker config: the
   pushed manifest is the layout's.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import time
import uuid

import pytest
import requests

from mlflow_steps.components.builder.backends import split
from mlflow_steps.components.builder.build import base_resolver, plan
from mlflow_steps.components.builder.planning.indexes import SECRET_ID, secret_files
from mlflow_steps.components.builder.planning.options import BuildOptions
from tests.conftest import INDEX_USERS
from tests.support import images, services
from tests.support.images import BUILDAH_ENV, remove_local_images
from tests.support.oci import MANIFEST_TYPE

from .oci.test_registry import write_docker_config
from .test_index_secrets_e2e import forms, small_codeset
from .test_untrusted_codeset import credentialed
from .test_untrusted_codeset_e2e import member_names

pytestmark = pytest.mark.e2e


# The push registry's user (the `auth_registry` fixture, htpasswd).
REGISTRY_USER, REGISTRY_PASSWORD = "alice", "s3cret-pass"

# A path requirement built in the build container only: it records its environment and the
# index secret file (as test_untrusted_codeset_e2e's), and looks for the registry password
# everywhere it can read: every environment variable, every file of its filesystem (up to 4
# MB each), and the environment and command line of every process it can see. The password
# is spelled reversed here, so the spy's own source (in the image) does not hold it.
SPY_SETUP = """
import base64, json, os
from setuptools import setup
password = "PASSWORD_REVERSED"[::-1]
needles = [password.encode(), base64.b64encode(("USER:" + password).encode())]
found, scanned = [], 0
def look(name, data):
    for needle in needles:
        if needle in data:
            found.append(name)
for key, value in os.environ.items():
    look("env " + key, value.encode())
for root, dirs, files in os.walk("/"):
    if root in ("/proc", "/sys", "/dev"):
        dirs[:] = []
        continue
    for name in files:
        path = os.path.join(root, name)
        try:
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            if os.path.getsize(path) > 4 * 1024 * 1024:
                continue
            with open(path, "rb") as handle:
                look(path, handle.read())
            scanned += 1
        except OSError:
            pass
for pid in os.listdir("/proc") if os.path.isdir("/proc") else []:
    for part in ("environ", "cmdline"):
        try:
            with open("/proc/%s/%s" % (pid, part), "rb") as handle:
                look("/proc/%s/%s" % (pid, part), handle.read())
        except OSError:
            pass
try:
    with open("/run/secrets/mlflow-steps-index") as handle:
        secret = handle.read()
except OSError:
    secret = ""
os.makedirs("spy", exist_ok=True)
saw = {"environ": dict(os.environ), "secret": secret, "found": found, "scanned": scanned}
with open("spy/__init__.py", "w") as out:
    out.write("SAW = " + repr(json.dumps(saw)))
setup(name="spy", version="0.1", packages=["spy"])
""".replace("PASSWORD_REVERSED", REGISTRY_PASSWORD[::-1]).replace("USER", REGISTRY_USER)


def authed_blobs(host: str, repository: str, tag: str) -> tuple[bytes, dict[str, bytes]]:
    """The manifest and every blob of `repository:tag` in the htpasswd registry."""
    base, auth = f"http://{host}/v2/{repository}", (REGISTRY_USER, REGISTRY_PASSWORD)
    manifest = requests.get(
        f"{base}/manifests/{tag}", auth=auth, headers={"Accept": MANIFEST_TYPE}, timeout=30
    )
    manifest.raise_for_status()
    parsed = json.loads(manifest.content)
    blobs = {}
    for item in [parsed["config"], *parsed["layers"]]:
        data = requests.get(f"{base}/blobs/{item['digest']}", auth=auth, timeout=120).content
        blobs[item["digest"]] = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    return manifest.content, blobs


def test_download_build_push_the_build_phase_holds_no_credential(
    registry, auth_registry, base_images, tmp_path, monkeypatch
):
    """The three containers, buildah standing in for Kaniko in `download` and `build` (Kaniko
    cannot run here; `--phase install --engine buildah` writes the OCI image layout with
    `buildah push IMG oci:DIR`, as Kaniko's `--no-push --oci-layout-path DIR` does). The
    image goes to a registry that needs a password (htpasswd); the base comes from an
    anonymous one. Only `download` and `push` are given the registry's docker config."""
    index = services.start_index(images.wheelhouse(), tmp_path / "index", users=INDEX_USERS)
    (tmp_path / "docker").mkdir()
    docker_config = write_docker_config(
        tmp_path / "docker", auth_registry.host, REGISTRY_USER, REGISTRY_PASSWORD
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))  # the download container's
    stopped = False
    try:
        url, password = credentialed(index.extra["url"])
        codeset = small_codeset(tmp_path / "codeset", "six==1.17.0")
        (codeset / "vendor" / "spy").mkdir(parents=True)
        (codeset / "vendor" / "spy" / "setup.py").write_text(SPY_SETUP)
        with (codeset / "requirements.txt").open("a") as handle:
            handle.write("./vendor/spy\n")
        # The anonymous registry (the base's) is the pull registry: `insecure` covers the
        # builder's own registries only, and the base must be plain http too.
        options = BuildOptions(
            registry=auth_registry.host,
            pull_registry=registry.host,
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
        # The build container: no index setting, no netrc, no secret, no registry credential
        # (no DOCKER_CONFIG, no auth file); the index is gone.
        environ = {
            k: v
            for k, v in BUILDAH_ENV.items()
            if not k.startswith(("PIP_", "UV_", "FUSEML_PIP", "MLFLOW_STEPS_INDEX"))
            and k not in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE")
        }
        cli = [sys.executable, "-m", "mlflow_steps", "build", str(codeset)]
        cli += ["--registry", auth_registry.host, "--pull-registry", registry.host, "--insecure"]
        cli += ["--repository", "split/trainer", "--engine", "buildah", "--verbose"]
        cli += ["--downloads", str(downloads)]
        time.sleep(0.2)  # the registry writes its access log after answering
        asked_before = len(auth_registry.requests_seen())
        built = subprocess.run(
            [*cli, "--phase", "install"], capture_output=True, text=True, env=environ
        )
    finally:
        if not stopped:
            index.stop()
    assert built.returncode == 0, built.stderr[-3000:]
    assert "--secret" not in built.stderr  # buildah was given none
    time.sleep(0.2)
    assert auth_registry.requests_seen()[asked_before:] == []  # it never asked the registry
    layout_index = json.loads((downloads / "layout" / "index.json").read_text())
    (layout_manifest,) = layout_index["manifests"]
    # The push container: the registry's docker config, the project's client.
    out, digest_out = tmp_path / "image", tmp_path / "digest"
    pushing = {**environ, "DOCKER_CONFIG": str(docker_config)}
    pushed = subprocess.run(
        [*cli, "--phase", "push", "--output", str(out), "--digest-output", str(digest_out)],
        capture_output=True, text=True, env=pushing,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    image = out.read_text()
    assert image == options.pull_reference(job["tag"])
    # The pushed image is the layout's, byte for byte.
    assert digest_out.read_text() == layout_manifest["digest"]
    manifest, blobs = authed_blobs(auth_registry.host, "split/trainer", job["tag"])
    assert "sha256:" + hashlib.sha256(manifest).hexdigest() == layout_manifest["digest"]
    spied = [data for data in blobs.values() if b"spy/__init__.py" in data]
    assert spied, "the path requirement was not built in the build container"
    saw = spy_report(spied[0])
    assert saw["secret"] == "" and "PIP_INDEX_URL" not in saw["environ"]
    assert "DOCKER_CONFIG" not in saw["environ"] and "REGISTRY_AUTH_FILE" not in saw["environ"]
    assert saw["scanned"] > 1000  # it read the filesystem it could see
    assert saw["found"] == []  # the registry password: nowhere the build's code could read
    names = member_names(blobs)
    assert any(name.endswith("site-packages/six.py") for name in names)
    assert not any("/tmp/mlflow-steps/" in f"/{name}" for name in names)  # downloads deleted
    config = json.loads(next(data for data in blobs.values() if data.startswith(b"{")))
    history = " ".join(h.get("created_by", "") for h in config["history"])
    assert "install-python-env.sh" in history and SECRET_ID not in history
    logs = [built.stderr, built.stdout, pushed.stderr, pushed.stdout]
    for data in [manifest, *blobs.values(), *(text.encode() for text in logs)]:
        for secret in [*forms("alice"), password, REGISTRY_PASSWORD]:
            assert secret.encode() not in data


def spy_report(layer: bytes) -> dict:
    """The spy's SAW, from the layer that holds spy/__init__.py."""
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("spy/__init__.py"))
        text = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
    return json.loads(ast.literal_eval(text.removeprefix("SAW = ")))


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

"""The `platforms` input, all real: the debootstrapped Debian 12 bases for amd64 and arm64
(the arm64 one from debootstrap's first stage, its packages unpacked with dpkg-deb) pushed as
one OCI image index to a real registry, a pypiserver index of both platforms' wheels, the CLI
with `--engine none --platforms linux/amd64,linux/arm64`; the arm64 image's Python then runs
under qemu-aarch64-static (user-mode: no binfmt_misc needed) and trains a model that the amd64
image's Python loads."""

from __future__ import annotations

import base64
import json
import platform
import subprocess
from pathlib import Path

import pytest

from mlflow_steps.components.builder.backends.layered.platforms import ELF_MACHINES, elf_machine
from mlflow_steps.components.builder.backends.layered.tarlayer import MEDIA_TYPE
from mlflow_steps.components.builder.oci.referrers import referrers
from mlflow_steps.components.builder.oci.sbom import MEDIA_TYPE as SBOM_TYPE
from mlflow_steps.stack import build_argv
from tests.support import platforms as parts
from tests.support import services
from tests.support.require import require, require_tools

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[5]
PLATFORMS = "linux/amd64,linux/arm64"
VENV = "opt/mlflow-env"

TRAIN = """
import base64, pickle, platform, sys
import numpy as np
from sklearn.linear_model import ElasticNet
rng = np.random.default_rng(42)
x = rng.normal(size=(200, 4))
y = x @ np.array([1.5, -2.0, 0.5, 3.0]) + rng.normal(scale=0.1, size=200)
model = ElasticNet(alpha=0.1).fit(x, y)
print(platform.machine(), sys.prefix)
print(base64.b64encode(pickle.dumps(model)).decode())
"""

LOAD = """
import base64, pickle, platform, sys
import numpy as np
model = pickle.loads(base64.b64decode(sys.stdin.read()))
print(platform.machine(), round(float(model.predict(np.ones((1, 4)))[0]), 3))
"""


def platforms_argv(codeset: Path, registry, index, base: str, repository: str,
                   out: Path) -> list[str]:  # fmt: skip
    argv = build_argv(codeset, registry.host, base=base, index_url=index.extra["url"],
                      repository=repository, output=out)  # fmt: skip
    argv[argv.index("--engine") + 1] = "none"
    return [*argv, "--platforms", PLATFORMS, "--digest-output", f"{out}.digest"]


@pytest.fixture(scope="module")
def two_platforms(tmp_path_factory, registry, base_images):
    """(registry, index, base index reference) for two-platform builds."""
    require_tools("debootstrap", "dpkg-deb", "qemu-aarch64-static")
    house = parts.two_platform_wheelhouse(tmp_path_factory.mktemp("wheels") / "house")
    index = services.start_index(house, tmp_path_factory.mktemp("two-platform-index"))
    base = parts.push_two_platform_base(registry.host, base_images["debian"])
    yield registry, index, base
    index.stop()


@pytest.fixture(scope="module")
def built(two_platforms, tmp_path_factory):
    """The sklearn example built for both platforms, once: (index digest, the index, {arch:
    manifest digest}, log)."""
    registry, index, base = two_platforms
    work = tmp_path_factory.mktemp("platforms-build")
    out = work / "image"
    argv = platforms_argv(ROOT / "examples" / "sklearn-pip", registry, index, base,
                          "platforms/sklearn", out)  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    digest = Path(f"{out}.digest").read_text().strip()
    found = parts.writer(registry.host).get_manifest("platforms/sklearn", digest)
    assert found is not None
    document = json.loads(found[0])
    manifests = {m["platform"]["architecture"]: m["digest"] for m in document["manifests"]}
    yield digest, document, manifests, done.stderr, out.read_text().strip()


@pytest.fixture(scope="module")
def rootfs(built, two_platforms, tmp_path_factory):
    """{arch: folder} of each platform's image, every layer applied; and {arch: our layers'
    count}."""
    registry, _, _ = two_platforms
    _, _, manifests, _, _ = built
    folders = {}
    for arch, digest in manifests.items():
        folder = tmp_path_factory.mktemp(f"rootfs-{arch}") / "rootfs"
        parts.extract_layers(registry.host, "platforms/sklearn", digest, folder)
        folders[arch] = folder
    yield folders
    for folder in folders.values():
        parts.remove(folder)


def layers_by_what(registry, digest: str) -> dict[str, str]:
    """{history entry of each of our layers ("mlflow-steps: numpy 2.4.6"): layer digest}."""
    client = parts.writer(registry.host)
    found = client.get_manifest("platforms/sklearn", digest)
    assert found is not None
    manifest = json.loads(found[0])
    config = json.loads(client.get_blob("platforms/sklearn", manifest["config"]["digest"]))
    layered = [h for h in config["history"] if not h.get("empty_layer")]
    assert len(layered) == len(manifest["layers"])
    return {
        h["created_by"]: layer["digest"]
        for h, layer in zip(layered, manifest["layers"])
        if h["created_by"].startswith("mlflow-steps: ") and layer["mediaType"] == MEDIA_TYPE
    }


def test_two_platforms_give_one_index_with_two_manifests(built, two_platforms):
    digest, document, manifests, log, image = built
    registry, _, _ = two_platforms
    assert document["mediaType"] == parts.OCI_INDEX
    assert sorted(manifests) == ["amd64", "arm64"]
    assert len(set(manifests.values())) == 2
    # The output names the index: the tag resolves to it.
    assert (
        parts.writer(registry.host).client.manifest_digest(
            "platforms/sklearn", image.rpartition(":")[2]
        )
        == digest
    )
    for arch, manifest_digest in manifests.items():
        found = parts.writer(registry.host).get_manifest("platforms/sklearn", manifest_digest)
        assert found is not None
        config_digest = json.loads(found[0])["config"]["digest"]
        config = json.loads(parts.writer(registry.host).get_blob("platforms/sklearn",
                                                                 config_digest))  # fmt: skip
        assert config["architecture"] == arch
        # Each manifest carries its SBOM as an OCI 1.1 referrer.
        assert referrers(parts.writer(registry.host), "platforms/sklearn", manifest_digest,
                         SBOM_TYPE)  # fmt: skip
    # And the index its own (the recipe's, naming the base's index digest).
    assert referrers(parts.writer(registry.host), "platforms/sklearn", digest, SBOM_TYPE)
    assert "image index" in log


def test_each_platforms_layers_hold_its_own_machine_code(rootfs):
    for arch, machine in (("amd64", "x86_64"), ("arm64", "aarch64")):
        venv = rootfs[arch] / VENV
        files = [p for p in venv.rglob("*") if p.is_file() and not p.is_symlink()]
        machines = {elf_machine(p) for p in files} - {None}
        assert machines == {ELF_MACHINES[machine]}, (arch, machines)
        assert any(p.name.endswith(".so") for p in venv.rglob("_*.so"))


def test_pure_python_layers_are_shared_across_platforms(built, two_platforms):
    _, _, manifests, _, _ = built
    registry, _, _ = two_platforms
    amd64 = layers_by_what(registry, manifests["amd64"])
    arm64 = layers_by_what(registry, manifests["arm64"])
    assert set(amd64) == set(arm64)
    shared = {what for what in amd64 if amd64[what] == arm64[what]}
    names = {what.split(": ", 1)[1].split(" ")[0] for what in shared}
    assert {"joblib", "threadpoolctl", "mlflow-skinny", "venv"} <= names, sorted(shared)
    assert not {"numpy", "scipy", "scikit-learn", "pandas"} & names, sorted(shared)


def test_the_arm64_image_trains_under_qemu_and_the_model_loads_on_amd64(rootfs):
    arm = rootfs["arm64"]
    trained = subprocess.run(
        ["qemu-aarch64-static", "-L", str(arm), "-0", f"/{VENV}/bin/python",
         str(arm / "usr/bin/python3.11"), "-c", TRAIN],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    machine, prefix = trained.stdout.splitlines()[0].split()
    assert (machine, prefix) == ("aarch64", f"/{VENV}")
    model = trained.stdout.splitlines()[1]
    amd = rootfs["amd64"]
    require(platform.machine() == "x86_64", "loads the model with the amd64 image's Python")
    site = amd / VENV / "lib/python3.11/site-packages"
    loader = amd / "lib64/ld-linux-x86-64.so.2"
    libraries = ":".join(str(amd / p) for p in ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"))
    loaded = subprocess.run(
        [str(loader), "--library-path", libraries, str(amd / "usr/bin/python3.11"), "-S",
         "-c", LOAD],
        input=model, capture_output=True, text=True, timeout=300,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    machine, prediction = loaded.stdout.split()
    assert machine == "x86_64"
    assert abs(float(prediction) - 3.0) < 0.5  # 1.5 - 2.0 + 0.5 + 3.0, shrunk by alpha
    assert base64.b64decode(model)  # what crossed was the pickled model itself


def test_a_requirement_without_an_aarch64_wheel_fails_and_pushes_nothing(two_platforms, tmp_path):
    registry, index, base = two_platforms
    codeset = tmp_path / "codeset"
    codeset.mkdir()
    (codeset / "MLproject").write_text(
        "name: x86only\nentry_points:\n  main:\n    command: python -c 1\n"
    )
    (codeset / "requirements.txt").write_text(f"{parts.X86_ONLY}==1.0\nsix\n")
    repository = "platforms/x86only"
    argv = platforms_argv(codeset, registry, index, base, repository, tmp_path / "image")
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode != 0
    assert f"{parts.X86_ONLY} 1.0 has no wheel for linux/arm64" in done.stderr, done.stderr[-3000:]
    assert "nothing was pushed" in done.stderr
    assert not (tmp_path / "image").exists()
    client = parts.writer(registry.host)
    response = client.send("GET", f"{client.base}/v2/{repository}/tags/list", repository)
    assert response.status_code == 404 or not response.json().get("tags"), response.text


def test_a_platform_the_base_index_lacks_is_named(two_platforms, tmp_path):
    registry, index, base = two_platforms
    argv = platforms_argv(ROOT / "examples" / "sklearn-pip", registry, index, base,
                          "platforms/s390x", tmp_path / "image")  # fmt: skip
    argv[argv.index("--platforms") + 1] = "linux/amd64,linux/s390x"
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode != 0
    assert "its image index has no linux/s390x (it has 'linux/amd64', 'linux/arm64/v8')" in (
        done.stderr
    ), done.stderr[-3000:]
    assert not (tmp_path / "image").exists()

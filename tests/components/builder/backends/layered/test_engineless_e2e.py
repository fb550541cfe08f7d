"""The engine-less build (`--engine none`), all real: a registry (its access log read), a
pypiserver index of the test wheelhouse, the debootstrapped Debian base (never pulled by the
build), the CLI run as uid 65532 with no engine on PATH and a fresh HOME; the image then
trains under buildah and its model loads on the host."""

from __future__ import annotations

import base64
import marshal
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from mlflow_steps.components import confinement
from mlflow_steps.components.builder.backends.layered.base_files import (
    extracted,
    interpreter_argv,
    read_base,
)
from mlflow_steps.components.builder.backends.layered.grouping import (
    BINARY_LAYERS,
    SHARED_LAYERS,
)
from mlflow_steps.components.builder.backends.layered.host_install import (
    Untrusted,
    compile_tree,
)
from mlflow_steps.components.builder.backends.layered.image import Reference, fetch_base
from mlflow_steps.components.builder.oci.registry import RegistryClient
from mlflow_steps.components.builder.oci.registry_push import RegistryWriter
from mlflow_steps.components.builder.planning.plan import recipe_file
from mlflow_steps.stack import build_argv
from mlflow_steps.stack import images as stack_images
from tests.components.builder.backends.layered.test_layered_e2e import sdist_only_index
from tests.components.launcher.test_run_e2e import assert_loadable_model, mlflow_steps_run
from tests.conftest import INDEX_USERS
from tests.support import images
from tests.support.builds import run_in_image
from tests.support.images import BUILDAH_ENV, remove_local_images
from tests.support.oci import manifest_and_config, pushed_image
from tests.support.require import require_tools
from tests.support.unprivileged import Unprivileged

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[5]


def engineless_argv(codeset: Path, registry, index, base: str, repository: str, out: Path,
                    python: str = sys.executable) -> list[str]:  # fmt: skip
    argv = build_argv(codeset, registry.host, base=base, index_url=index.extra["url"],
                      repository=repository, output=out)  # fmt: skip
    argv[0] = python
    argv[argv.index("--engine") + 1] = "none"
    return [*argv, "--digest-output", f"{out}.digest"]


def writes(registry, since: int, repository: str) -> list[str]:
    """Uploads (PUT) and manifests put into `repository` since request number `since`."""
    return [
        line
        for line in registry.requests_seen()[since:]
        if line.startswith("PUT ") and line.split(" ", 1)[1].startswith(f"/v2/{repository}/")
    ]


@pytest.fixture(scope="module")
def unprivileged(package_index):
    user = Unprivileged(package_index.extra["url"])
    yield user
    user.remove()


@pytest.fixture(scope="module")
def engineless_sklearn(unprivileged, registry, package_index, base_images):
    """The sklearn example built by uid 65532 with no engine: (codeset, image, digest, log)."""
    codeset = unprivileged.readable_copy(ROOT / "examples" / "sklearn-pip", "sklearn")
    out = unprivileged.work / "image"
    argv = engineless_argv(codeset, registry, package_index, base_images["debian"],
                           "engineless/sklearn", out, python="python")  # fmt: skip
    done = unprivileged.run(argv)
    assert done.returncode == 0, done.stderr[-4000:]
    image = out.read_text()
    yield codeset, image, Path(f"{out}.digest").read_text(), done.stderr
    remove_local_images(image)


def test_an_unprivileged_user_without_an_engine_builds_the_sklearn_example(
    engineless_sklearn, base_images
):
    _, image, digest, log = engineless_sklearn
    assert "engine-less: Python 3.11." in log and "glibc 2.36" in log
    assert "layering: single" not in log and "engine: not engine-less" not in log
    manifest, config = manifest_and_config(image)
    base_manifest, _ = manifest_and_config(base_images["debian"])
    grouped = len(base_manifest["layers"]) + 3 + 4 + SHARED_LAYERS + BINARY_LAYERS
    assert 8 < len(manifest["layers"]) <= grouped  # grouped as with buildah (test_layered_e2e)
    assert manifest["layers"][: len(base_manifest["layers"])] == base_manifest["layers"]
    history = [entry["created_by"] for entry in config["history"]]
    assert "mlflow-steps: venv" in history and history[-1] == "mlflow-steps: lock"
    assert any(entry.startswith("mlflow-steps: scikit-learn ") for entry in history)
    groups = [entry for entry in history if entry.startswith("mlflow-steps: group: ")]
    assert 2 <= len(groups) <= SHARED_LAYERS + BINARY_LAYERS
    assert any(" idna " in entry for entry in groups)
    assert any(" numpy " in entry and " idna " not in entry for entry in groups)
    assert digest.startswith("sha256:")


def test_its_layers_are_what_a_second_build_writes_byte_for_byte(
    engineless_sklearn, unprivileged, registry, package_index, base_images
):
    """A second build by the same builder into another namespace (its own layer cache, so
    every layer is written again; the base's file lists now come from the builder's cache):
    the same manifest, hence the same layers and config. (Once, in a full run, a
    databricks-sdk layer differed. The likely cause, now fixed: a file's bytecode depended
    on the file compiled before it in the same worker, so a layer that the `engineless/`
    layer cache held from another environment's build differed from the one this
    environment writes; test_compile_bytecode.py shows it.)"""
    codeset, image, digest, _ = engineless_sklearn
    out = unprivileged.work / "again"
    argv = engineless_argv(codeset, registry, package_index, base_images["debian"],
                           "again/sklearn", out, python="python")  # fmt: skip
    since = len(registry.requests_seen())
    done = unprivileged.run(argv)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "0 already in the registry" in done.stderr
    assert any("/blobs/uploads/" in line for line in writes(registry, since, "again/sklearn"))
    (first, config), (second, _) = manifest_and_config(image), manifest_and_config(out.read_text())
    names = [entry["created_by"] for entry in config["history"]][-len(first["layers"]) :]
    differ = [name for name, a, b in zip(names, first["layers"], second["layers"]) if a != b]
    assert differ == [] and first["config"] == second["config"]
    assert Path(f"{out}.digest").read_text() == digest


def test_the_image_trains_under_buildah_and_its_model_loads(engineless_sklearn, mlflow_env,
                                                            tmp_path):  # fmt: skip
    codeset, image, _, _ = engineless_sklearn
    out = tmp_path / "model-url"
    flags = ["--image", image, "--engine", "buildah", "--insecure", "--experiment",
             "e2e-engineless", "--entrypoint-args", "alpha=0.2"]  # fmt: skip
    done = mlflow_steps_run(codeset, out, *flags)
    assert done.returncode == 0, done.stderr[-4000:]
    assert_loadable_model(out.read_text())


def test_a_wheel_needing_a_library_the_base_lacks_fails_and_pushes_nothing(
    unprivileged, registry, package_index, base_images
):
    """lightgbm's library links libgomp.so.1; the Debian minbase has no libgomp1."""
    codeset = unprivileged.readable_copy(ROOT / "tests" / "cases" / "lightgbm-libgomp", "lgbm")
    out = unprivileged.work / "lgbm-image"
    since = len(registry.requests_seen())
    argv = engineless_argv(codeset, registry, package_index, base_images["debian"],
                           "engineless/lightgbm", out, python="python")  # fmt: skip
    done = unprivileged.run(argv)
    assert done.returncode != 0
    assert "libgomp.so.1 (Debian package libgomp1), needed by " in done.stderr
    assert "lightgbm/lib/lib_lightgbm.so" in done.stderr and "nothing was pushed" in done.stderr
    assert writes(registry, since, "engineless/lightgbm") == []
    assert not out.exists()


def test_engine_none_refuses_system_packages_at_once_naming_the_builder_to_use(
    registry, package_index, base_images, tmp_path
):
    codeset = tmp_path / "apt"
    shutil.copytree(ROOT / "examples" / "sklearn-pip", codeset)
    out = tmp_path / "apt-image"
    argv = engineless_argv(codeset, registry, package_index, base_images["debian"],
                           "engineless/apt", out)  # fmt: skip
    since = len(registry.requests_seen())
    done = subprocess.run([*argv, "--system-packages", "libgomp1"], capture_output=True,
                          text=True, env=BUILDAH_ENV)  # fmt: skip
    assert done.returncode != 0
    assert "engine none (the unprivileged builder) cannot build this codeset" in done.stderr
    assert "system_packages" in done.stderr and "buildah or Kaniko builder" in done.stderr
    assert writes(registry, since, "engineless/apt") == [] and not out.exists()


def test_the_bases_own_interpreter_runs_from_its_files_and_compiles(
    registry, base_images, tmp_path, monkeypatch
):
    """The path for a base whose Python minor version the builder lacks: the base's layers
    extracted (as any user would), its interpreter run through its own loader and libc; the
    .pyc it writes carries its magic number and names the path in the image."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    writer = RegistryWriter(RegistryClient(registry.host, insecure=True))
    ref = Reference.parse(base_images["debian"])
    base = fetch_base(writer, ref, platform.machine())
    facts = read_base(writer, ref, base, platform.machine())
    rootfs = extracted(writer, ref, base)
    argv = interpreter_argv(rootfs, facts)
    asked = "import sys, importlib.util; print(sys.version.split()[0], sys.prefix)"
    done = subprocess.run([*argv, "-I", "-c", asked], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    version, prefix = done.stdout.split()
    assert version == facts.python and prefix == str(rootfs / "usr")
    site = "/opt/mlflow-env/lib/python3.11/site-packages"
    staged = tmp_path / "staged"
    (staged / site.lstrip("/") / "pkg").mkdir(parents=True)
    (staged / site.lstrip("/") / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    # As the build runs it: untrusted, confined to the base's files and the staged tree.
    base = Untrusted(tuple(argv), (str(rootfs),))
    (tmp_path / "script").mkdir()
    compile_tree(staged, site, facts.target.python_minor, recipe_file("compile-bytecode.py"),
                 base, tmp_path / "script")  # fmt: skip
    (pyc,) = (staged / site.lstrip("/") / "pkg" / "__pycache__").iterdir()
    magic = "import importlib.util as u; print(u.MAGIC_NUMBER.hex())"
    magic = subprocess.run([*argv, "-I", "-c", magic], capture_output=True, text=True).stdout
    assert magic.strip()
    assert pyc.name == "__init__.cpython-311.pyc" and pyc.read_bytes()[:4].hex() == magic.strip()
    assert marshal.loads(pyc.read_bytes()[16:]).co_filename == f"{site}/pkg/__init__.py"
    # What it cannot reach, confined: a file of the builder's user beside its own files.
    secret = tmp_path / "config.json"
    secret.write_text("{}")
    peek = f"open({str(secret)!r}).read()"
    done = subprocess.run(confinement.confined([*argv, "-I", "-c", peek], [str(rootfs)], []),
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode != 0 and "PermissionError" in done.stderr, done.stderr


@pytest.fixture(scope="module")
def trixie_base(registry):
    """A Debian 13 (trixie) minbase with its python3 (3.13), debootstrapped once and pushed."""
    require_tools("debootstrap", "podman")
    reference = f"{registry.host}/base/debian:trixie"
    with stack_images.debian_tarball(images.CACHE, "trixie").open("rb") as tar:
        stack_images.sh("podman", "import", "-", reference, stdin=tar, log_stdout=False)
    stack_images.sh("podman", "push", "--tls-verify=false", reference, quiet=True)
    remove_local_images(reference)
    return reference


def test_a_python_313_base_gets_313_bytecode_from_a_311_builder(
    unprivileged, registry, package_index, trixie_base, tmp_path
):
    """The builder runs 3.11 and has no 3.13: the base's own interpreter, run from its files,
    compiles; the wheels are resolved for 3.13 (pure-Python ones: the test index holds binary
    wheels for 3.11 only)."""
    source = tmp_path / "trixie"
    source.mkdir()
    (source / "MLproject").write_text("entry_points: {main: {command: python -c 'import six'}}\n")
    (source / "requirements.txt").write_text("six==1.17.0\npython-dotenv\n")
    codeset = unprivileged.readable_copy(source, "trixie")
    out = unprivileged.work / "trixie-image"
    argv = engineless_argv(codeset, registry, package_index, trixie_base, "engineless/trixie",
                           out, python="python")  # fmt: skip
    done = unprivileged.run([*argv, "--mlflow-requirement", ""])
    assert done.returncode == 0, done.stderr[-4000:]
    assert "engine-less: Python 3.13." in done.stderr
    assert "bytecode compiled by the base's own Python 3.13." in done.stderr
    assert "run from its files, confined (Landlock, seccomp)" in done.stderr
    image = out.read_text()
    probe = (
        "import dotenv, importlib.util, pathlib, six, sys; "
        "data = pathlib.Path(dotenv.__cached__).read_bytes(); "
        "print(sys.version_info[:2], data[:4] == importlib.util.MAGIC_NUMBER, dotenv.__cached__)"
    )
    check = run_in_image(image, "python", "-c", probe)
    remove_local_images(image)
    assert check.returncode == 0, check.stderr
    assert check.stdout.split()[:3] == ["(3,", "13)", "True"]
    assert ".cpython-313.pyc" in check.stdout


def small_codeset(root: Path, *requirements: str) -> Path:
    root.mkdir(parents=True)
    (root / "MLproject").write_text("entry_points: {main: {command: python -c 'import six'}}\n")
    (root / "requirements.txt").write_text("\n".join(requirements) + "\n")
    return root


def test_a_one_package_bump_in_a_fresh_pod_reads_the_base_record_not_its_layers(
    registry, package_index, base_images, tmp_path
):
    """Each build with an empty builder cache (a new pod): the first reads the base's layers
    and records what it found; the bump reads that record, installs six alone and fetches no
    layer of the base."""
    base = base_images["debian"]
    base_layers = {layer["digest"] for layer in manifest_and_config(base)[0]["layers"]}
    logs = []
    for six in ("1.16.0", "1.17.0"):
        codeset = small_codeset(tmp_path / six, "packaging", f"six=={six}")
        out = tmp_path / f"{six}.image"
        argv = engineless_argv(codeset, registry, package_index, base, "freshpod/env", out)
        since = len(registry.requests_seen())
        env = {**BUILDAH_ENV, "XDG_CACHE_HOME": str(tmp_path / f"cache-{six}")}
        done = subprocess.run([*argv, "--mlflow-requirement", ""], capture_output=True,
                              text=True, env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        fetched = {
            line.rsplit("/", 1)[-1]
            for line in registry.requests_seen()[since:]
            if line.startswith("GET ") and "/blobs/sha256:" in line
        }
        logs.append((done.stderr, fetched & base_layers))
    (first, first_fetched), (second, second_fetched) = logs
    assert "base read" in first and first_fetched == base_layers
    assert "base record" in second and second_fetched == set()
    assert "1 to install: six 1.17.0" in second


def test_through_an_index_that_asks_for_credentials_nothing_of_them_is_pushed_or_logged(
    auth_index, registry, base_images, tmp_path
):
    """The index answers 401 without credentials: the resolution and the downloads use them,
    and no layer, config, manifest or log line holds them."""
    codeset = small_codeset(tmp_path / "secret", "six==1.16.0", "packaging")
    password = quote(INDEX_USERS["alice"], safe="")
    url = auth_index.extra["url"].replace("http://", f"http://alice:{password}@")
    out = tmp_path / "secret.image"
    argv = build_argv(codeset, registry.host, base=base_images["debian"], index_url=url,
                      repository="engineless/secret", output=out)  # fmt: skip
    argv[argv.index("--engine") + 1] = "none"
    env = {**BUILDAH_ENV, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    # Plain http: credentials go to a host named trusted (insecure) only.
    argv += ["--pip-trusted-host", "127.0.0.1"]
    done = subprocess.run([*argv, "--mlflow-requirement", "", "--verbose"], capture_output=True,
                          text=True, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "engine-less:" in done.stderr
    blobs = pushed_image(out.read_text())
    assert any(b"site-packages/six.py" in data for data in blobs.values())
    user = INDEX_USERS["alice"]
    secrets = [user, password, base64.b64encode(f"alice:{user}".encode()).decode()]
    for secret in secrets:
        assert secret not in done.stdout + done.stderr
        for name, data in blobs.items():
            assert secret.encode() not in data, f"password found in {name}"


def test_an_sdist_fails_engine_none_at_once_and_auto_goes_on_with_an_engine(
    registry, package_index, base_images, tmp_path
):
    extra = sdist_only_index(tmp_path)
    try:
        codeset = small_codeset(tmp_path / "sdist", "tinypkg==1.0", "six==1.17.0")
        results = {}
        for engine in ("none", "auto"):
            out = tmp_path / f"{engine}.image"
            argv = engineless_argv(codeset, registry, package_index, base_images["debian"],
                                   f"engineless/sdist-{engine}", out)  # fmt: skip
            argv[argv.index("--engine") + 1] = engine
            argv += ["--mlflow-requirement", "", "--pip-extra-index-url", extra.extra["url"]]
            results[engine] = (subprocess.run(argv, capture_output=True, text=True,
                                              env=BUILDAH_ENV), out)  # fmt: skip
    finally:
        extra.stop()
    (refused, refused_out), (built, built_out) = results["none"], results["auto"]
    assert refused.returncode != 0 and not refused_out.exists()
    assert "cannot build this codeset" in refused.stderr and "no wheel" in refused.stderr
    assert "tinypkg 1.0" in refused.stderr and "buildah or Kaniko builder" in refused.stderr
    assert built.returncode == 0, built.stderr[-3000:]
    reasons = [line for line in built.stderr.splitlines() if line.startswith("engine: not")]
    assert len(reasons) == 1 and "tinypkg 1.0" in reasons[0] and "buildah" in reasons[0]
    image = built_out.read_text()
    check = run_in_image(image, "python", "-c", "import tinypkg; print(tinypkg.VALUE)")
    remove_local_images(image)
    assert check.stdout.strip() == "42", check.stderr

"""Per-package layering end to end, all real: buildah, a registry (its own access log read),
a pypiserver index, debootstrapped bases. The training run of the per-package sklearn image is
tests/components/launcher/test_run_e2e.py (sklearn_build is built per-package by default)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from mlflow_steps.components.builder.backends.layered.grouping import (
    BINARY_LAYERS,
    SHARED_LAYERS,
)
from mlflow_steps.components.builder.backends.recipe import VENV
from mlflow_steps.components.builder.oci import referrers, sbom
from mlflow_steps.components.builder.oci.registry import RegistryClient
from mlflow_steps.components.builder.oci.registry_push import RegistryWriter, sha256_digest
from tests.support import services
from tests.support.builds import local_build_argv, run_in_image
from tests.support.images import BUILDAH_ENV, remove_local_images
from tests.support.oci import manifest_and_config

pytestmark = pytest.mark.e2e


def codeset(root: Path, *requirements: str) -> Path:
    root.mkdir(parents=True)
    (root / "MLproject").write_text("entry_points: {main: {command: python -c 'import six'}}\n")
    (root / "requirements.txt").write_text("\n".join(requirements) + "\n")
    return root


def build(path: Path, registry, index_url: str, base: str, repository: str, *extra: str):
    out = path.parent / f"{path.name}.image"
    argv = local_build_argv(path, registry.host, base=base, index_url=index_url,
                            repository=repository, output=out)  # fmt: skip
    argv += ["--mlflow-requirement", "", *extra]
    done = subprocess.run(argv, capture_output=True, text=True, env=BUILDAH_ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    return out.read_text(), done.stderr


def sbom_blobs(host: str, image: str) -> set[str]:
    """The blobs of the SBOM referrer attached to `image` (its document, the empty config)."""
    repository, _, tag = image.partition("/")[2].rpartition(":")
    writer = RegistryWriter(RegistryClient(host, insecure=True))
    found = writer.get_manifest(repository, tag)
    assert found is not None
    document = referrers.find(writer, repository, found[2], sbom.MEDIA_TYPE)
    return {sha256_digest(document), sha256_digest(b"{}")}


def blob_requests(registry, since: int, repository: str) -> tuple[set[str], set[str]]:
    """(digests uploaded to, digests mounted into) `repository`, from the registry's log."""
    time.sleep(0.2)  # the registry writes its access log after answering
    uploaded, mounted = set(), set()
    for line in registry.requests_seen()[since:]:
        method, url = line.split(" ", 1)
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if not parts.path.startswith(f"/v2/{repository}/blobs/uploads/"):
            continue
        if method == "PUT":
            uploaded.update(query["digest"])
        elif method == "POST" and "mount" in query:
            mounted.update(query["mount"])
    return uploaded, mounted


def test_the_sklearn_image_is_per_package_with_the_recipes_config(sklearn_build, base_images):
    _, image, done = sklearn_build
    assert "per-package layers:" in done.stderr and "layering: single" not in done.stderr
    manifest, config = manifest_and_config(image)
    # Grouped (layered/grouping.py): the base, the venv, the runtime module, the lock, one layer
    # for each named distribution (scikit-learn, pandas, mlflow-skinny, six), at most
    # SHARED_LAYERS for the ~35 pure-Python ones pulled in and BINARY_LAYERS for the ~8 binary
    # ones (numpy, scipy, cryptography...); 14, not ~57 (nor 20, a layer per binary wheel).
    base_layers = len(manifest_and_config(base_images["debian"])[0]["layers"])
    assert 8 < len(manifest["layers"]) <= base_layers + 3 + 4 + SHARED_LAYERS + BINARY_LAYERS
    assert manifest["annotations"]["org.opencontainers.image.base.name"].endswith(
        "/base/debian:bookworm"
    )
    settings = config["config"]
    assert f"VIRTUAL_ENV={VENV}" in settings["Env"]
    assert settings["Entrypoint"] == ["python", "-m", "mlflow_steps_runtime"]
    assert settings["WorkingDir"] == "/project"
    assert settings["Labels"]["io.github.mlflow-steps.layering"] == "per-package"
    history = [entry["created_by"] for entry in config["history"]][-len(manifest["layers"]) + 1 :]
    assert "mlflow-steps: six 1.16.0" in history and history[-1] == "mlflow-steps: lock"
    assert any(entry.startswith("mlflow-steps: scikit-learn ") for entry in history)
    groups = [entry for entry in history if entry.startswith("mlflow-steps: group: ")]
    assert 2 <= len(groups) <= SHARED_LAYERS + BINARY_LAYERS
    assert any(" idna " in entry for entry in groups)
    # numpy shares a binary group, never one with a pure-Python distribution (idna's).
    assert any(" numpy " in entry and " idna " not in entry for entry in groups)


def test_a_one_package_bump_uploads_that_layer_and_mounts_the_rest(
    registry, package_index, base_images, tmp_path
):
    index, base = package_index.extra["url"], base_images["debian"]
    common = ("packaging", "idna", "click")
    first, _ = build(codeset(tmp_path / "a", *common, "six==1.16.0"), registry, index, base,
                     "layered/a")  # fmt: skip
    since = len(registry.requests_seen())
    second, log = build(codeset(tmp_path / "b", *common, "six==1.17.0"), registry, index, base,
                        "layered/b")  # fmt: skip
    assert "1 to install: six 1.17.0; by the builder itself, the base not pulled" in log
    base_layers = {layer["digest"] for layer in manifest_and_config(base)[0]["layers"]}
    fetched = {
        line.rsplit("/", 1)[-1]
        for line in registry.requests_seen()[since:]
        if line.startswith("GET ") and "/blobs/sha256:" in line
    }
    assert base_layers and not fetched & base_layers  # its manifest and config only
    (old, _), (new, new_config) = manifest_and_config(first), manifest_and_config(second)
    old_layers = {layer["digest"] for layer in old["layers"]}
    new_layers = {layer["digest"]: layer["size"] for layer in new["layers"]}
    # Shared: the base, the venv, the runtime module and the three common packages.
    assert len(old_layers & set(new_layers)) == len(new_layers) - 2
    fresh = set(new_layers) - old_layers  # six 1.17.0 and the lock
    uploaded, mounted = blob_requests(registry, since, "layered/b")
    assert uploaded == fresh | {new["config"]["digest"]} | sbom_blobs(registry.host, second)
    assert mounted >= set(new_layers) - fresh
    six_layer = next(
        layer["digest"]
        for layer, entry in zip(new["layers"], new_config["history"][-len(new["layers"]) :])
        if entry["created_by"] == "mlflow-steps: six 1.17.0"
    )
    assert six_layer in uploaded
    sent = sum(new_layers[digest] for digest in fresh) + new["config"]["size"]
    assert sent <= new_layers[six_layer] + 1024 * 1024
    imports = "import six, click, idna, packaging; print(six.__version__)"
    check = run_in_image(second, "python", "-c", imports)
    remove_local_images(second)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "1.17.0"


def test_pure_dependencies_share_layers_and_an_addition_rebuilds_its_shared_layer_only(
    registry, package_index, base_images, tmp_path
):
    """requests pulls in certifi, urllib3 (one shared layer) and idna (another); adding anyio
    brings typing-extensions into idna's shared layer, which the builder writes again itself
    (all pure, the base recorded); certifi's and urllib3's layer is mounted as it was."""
    index, base = package_index.extra["url"], base_images["debian"]
    first, _ = build(codeset(tmp_path / "s", "requests"), registry, index, base, "shared/a")
    since = len(registry.requests_seen())
    second, log = build(codeset(tmp_path / "t", "requests", "anyio"), registry, index, base,
                        "shared/b")  # fmt: skip
    assert "by the builder itself, the base not pulled" in log

    def layers(image: str) -> dict[str, str]:
        manifest, config = manifest_and_config(image)
        history = config["history"][-len(manifest["layers"]) :]
        return {h["created_by"]: layer["digest"] for layer, h in zip(manifest["layers"], history)}

    old, new = layers(first), layers(second)
    shared = [name for name in new if name.startswith("mlflow-steps: group: certifi ")]
    assert len(shared) == 1 and "urllib3 " in shared[0] and new[shared[0]] == old[shared[0]]
    assert "mlflow-steps: idna 3.21" in old  # alone in its shared layer, until anyio came
    rebuilt = [name for name in new if name.startswith("mlflow-steps: group: idna ")]
    assert len(rebuilt) == 1 and "typing-extensions " in rebuilt[0]
    fresh = {name for name, digest in new.items() if digest not in set(old.values())}
    assert fresh == {rebuilt[0], *[n for n in new if n.startswith("mlflow-steps: anyio ")],
                     "mlflow-steps: lock"}  # fmt: skip
    uploaded, mounted = blob_requests(registry, since, "shared/b")
    assert new[shared[0]] in mounted and new[shared[0]] not in uploaded
    check = run_in_image(second, "python", "-c", "import requests, anyio, typing_extensions")
    remove_local_images(second)
    assert check.returncode == 0, check.stderr


def test_a_build_after_its_layer_cache_was_deleted_writes_the_cache_again(
    registry, package_index, base_images, tmp_path
):
    """Build into NS/a; delete NS/mlflow-steps-layers (a retention policy); add one package and
    build again: it succeeds, and the layers the target already held are recorded in the cache
    again, so a third build mounts them all."""
    index, base = package_index.extra["url"], base_images["debian"]
    namespace = "pruned-" + tmp_path.name[-12:].lower().replace("_", "-")
    common = ("packaging", "six==1.16.0")
    build(codeset(tmp_path / "a", *common), registry, index, base, f"{namespace}/a")
    delete_repository(registry, f"{namespace}/mlflow-steps-layers")
    _, log = build(codeset(tmp_path / "b", *common, "idna"), registry, index, base,
                   f"{namespace}/a")  # fmt: skip
    assert "0 already in the registry (mounted), 3 to install" in log
    _, log = build(codeset(tmp_path / "c", *common, "idna", "click"), registry, index, base,
                   f"{namespace}/a")  # fmt: skip
    assert re.search(r"3 already in the registry \(mounted\), 1 to install: click ", log), log


def delete_repository(registry, repository: str) -> None:
    """What a retention policy does: the repository (tags, manifests, blob links) is gone."""
    folder = registry.log.parent / "data" / "docker/registry/v2/repositories" / repository
    assert folder.is_dir()
    shutil.rmtree(folder)


def sdist_only_index(tmp_path: Path):
    """A second pypiserver holding one package as an sdist only (setuptools builds it)."""
    folder = tmp_path / "sdists"
    folder.mkdir()
    files = {
        "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "tinypkg"\nversion = "1.0"\n',
        "tinypkg.py": "VALUE = 42\n",
        "PKG-INFO": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
    }
    with tarfile.open(folder / "tinypkg-1.0.tar.gz", "w:gz") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(f"tinypkg-1.0/{name}")
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return services.start_index(folder, tmp_path / "sdist-index")


def test_an_sdist_only_requirement_falls_back_to_single_and_says_why(
    registry, package_index, base_images, tmp_path
):
    extra = sdist_only_index(tmp_path)
    try:
        image, log = build(
            codeset(tmp_path / "sdist", "tinypkg==1.0", "six==1.17.0"), registry,
            package_index.extra["url"], base_images["debian"], "layered/sdist",
            "--pip-extra-index-url", extra.extra["url"],
        )  # fmt: skip
    finally:
        extra.stop()
    reasons = [line for line in log.splitlines() if line.startswith("layering: single")]
    assert len(reasons) == 1 and "tinypkg 1.0" in reasons[0] and "sdist" in reasons[0]
    assert "per-package layers:" not in log
    manifest, config = manifest_and_config(image)
    assert len(manifest["layers"]) == 2  # the base's and the environment's
    assert "io.github.mlflow-steps.layering" not in config["config"]["Labels"]
    check = run_in_image(image, "python", "-c", "import tinypkg; print(tinypkg.VALUE)")
    remove_local_images(image)
    assert check.stdout.strip() == "42", check.stderr


def test_a_pure_python_addition_is_installed_by_the_builder_and_runs_in_the_image(
    registry, package_index, base_images, tmp_path
):
    """python-dotenv: a console script (its shebang names the venv's python) and bytecode
    compiled by the builder for the base's Python, named by the path in the image."""
    index, base = package_index.extra["url"], base_images["debian"]
    build(codeset(tmp_path / "c", "six==1.16.0"), registry, index, base, "layered/c")
    addition = codeset(tmp_path / "d", "six==1.16.0", "python-dotenv[cli]")
    image, log = build(addition, registry, index, base, "layered/d")
    assert "by the builder itself, the base not pulled" in log
    probe = (
        "import dotenv, marshal, pathlib; "
        "data = pathlib.Path(dotenv.__cached__).read_bytes(); "
        "print(marshal.loads(data[16:]).co_filename); "
        "print(int.from_bytes(data[4:8], 'little'))"
    )
    check = run_in_image(
        image, "sh", "-c",
        f"dotenv --version && head -n 1 {VENV}/bin/dotenv && python -c \"{probe}\" && "
        f"cat {VENV}/lib/python3.*/site-packages/python_dotenv-*.dist-info/INSTALLER",
    )  # fmt: skip
    remove_local_images(image)
    assert check.returncode == 0, check.stderr
    lines = check.stdout.splitlines()
    assert lines[0].startswith("dotenv, version ")
    assert lines[1] == f"#!{VENV}/bin/python"
    assert lines[2].startswith(f"{VENV}/lib/python3.") and lines[2].endswith("/dotenv/__init__.py")
    assert lines[3] == "1"  # PEP 552: unchecked hash
    assert lines[4] == "mlflow-steps"


def test_the_probe_has_the_last_word_over_the_bases_python_version_label(
    registry, package_index, base_images, tmp_path
):
    """A base whose config says PYTHON_VERSION=3.12.0 but whose python3 is Debian's 3.11: the
    environment is resolved for the guess while the base is pulled, then again for 3.11."""
    liar = f"{registry.host}/base/liar:1"
    ctr = subprocess.run(
        ["buildah", "from", "--tls-verify=false", base_images["debian"]],
        capture_output=True, text=True, check=True, env=BUILDAH_ENV,
    ).stdout.split()[-1]  # fmt: skip
    try:
        for argv in (
            ["config", "--env", "PYTHON_VERSION=3.12.0", ctr],
            ["commit", "--tls-verify=false", ctr, f"docker://{liar}"],
        ):
            subprocess.run(["buildah", *argv], capture_output=True, check=True, env=BUILDAH_ENV)
    finally:
        subprocess.run(["buildah", "rm", ctr], capture_output=True, env=BUILDAH_ENV)
    image, log = build(codeset(tmp_path / "e", "six==1.17.0"), registry,
                       package_index.extra["url"], liar, "liar/env")  # fmt: skip
    assert "not 3.12.0: resolved again" in log
    check = run_in_image(image, "python", "-c", "import six, sys; print(sys.version_info[:2])")
    remove_local_images(image, liar)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "(3, 11)"


def test_a_constraints_file_is_honoured_per_package(registry, package_index, base_images, tmp_path):
    """`-c constraints.txt` holds six at 1.16.0 though 1.17.0 is on the index: the constraints
    take part in the resolution, and the image installs the lock's pins, per package."""
    root = codeset(tmp_path / "f", "-c constraints.txt", "six")
    (root / "constraints.txt").write_text("six==1.16.0\n")
    image, log = build(root, registry, package_index.extra["url"], base_images["debian"],
                       "layered/f")  # fmt: skip
    assert "per-package layers:" in log and "layering: single" not in log
    check = run_in_image(image, "python", "-c", "import six; print(six.__version__)")
    remove_local_images(image)
    assert check.stdout.strip() == "1.16.0", check.stderr


def test_a_binary_addition_on_a_recorded_base_keeps_one_skeleton_and_the_lock_last(
    registry, package_index, base_images, tmp_path
):
    """The base has a record (an earlier build in the namespace), but PyYAML is a binary
    wheel: the base is pulled and uv installs it there; the recorded skeleton is mounted, not
    written again, and the layers keep their order."""
    index, base = package_index.extra["url"], base_images["debian"]
    build(codeset(tmp_path / "g", "six==1.16.0"), registry, index, base, "layered/g")
    image, log = build(codeset(tmp_path / "h", "six==1.16.0", "pyyaml"), registry, index, base,
                       "layered/h")  # fmt: skip
    assert "the base not pulled" not in log and "pyyaml" in log
    manifest, config = manifest_and_config(image)
    history = [entry["created_by"] for entry in config["history"]][-len(manifest["layers"]) + 1 :]
    assert history.count("mlflow-steps: venv") == 1
    assert history[-1] == "mlflow-steps: lock"
    check = run_in_image(
        image, "sh", "-c", f"python -c 'import yaml, six' && cat {VENV}/pylock.toml"
    )
    remove_local_images(image)
    assert check.returncode == 0, check.stderr
    assert 'name = "pyyaml"' in check.stdout

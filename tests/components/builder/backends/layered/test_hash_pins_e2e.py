"""Hash pins hold when layers are reused (issue 23 item 12), all real: buildah, the registry
(its access log read), the pypiserver index, the debootstrapped base. tests/cases/
requirements-hashed is built per-package; then one hex digit of six's wheel hash is flipped
and the copy built again into the same registry, where every layer already is."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.builds import local_build_argv
from tests.support.images import BUILDAH_ENV, wheelhouse

pytestmark = pytest.mark.e2e

CASES = Path(__file__).resolve().parents[4] / "cases"

WHEEL_HASH = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"  # six 1.16.0


def build(codeset, registry, index_url: str, base: str, engine: str = "buildah"):
    out = codeset.parent / f"{codeset.name}.image"
    argv = local_build_argv(codeset, registry.host, base=base, index_url=index_url,
                            repository="layered/hashed", output=out)  # fmt: skip
    argv[argv.index("--engine") + 1] = engine
    argv += ["--mlflow-requirement", "", "--layering=per-package"]
    return subprocess.run(argv, capture_output=True, text=True, env=BUILDAH_ENV)


def test_a_flipped_hash_fails_naming_the_package_and_pushes_nothing(
    registry, package_index, base_images, tmp_path
):
    index, base = package_index.extra["url"], base_images["debian"]
    good = tmp_path / "good"
    shutil.copytree(CASES / "requirements-hashed", good)
    first = build(good, registry, index, base)
    assert first.returncode == 0, first.stderr[-3000:]
    bad = tmp_path / "bad"
    shutil.copytree(CASES / "requirements-hashed", bad)
    requirements = bad / "requirements.txt"
    flipped = WHEEL_HASH[:-1] + ("0" if WHEEL_HASH[-1] != "0" else "1")
    text = requirements.read_text()
    assert WHEEL_HASH in text
    requirements.write_text(text.replace(WHEEL_HASH, flipped))
    since = len(registry.requests_seen())
    second = build(bad, registry, index, base)
    assert second.returncode != 0
    assert "six 1.16.0" in second.stderr and WHEEL_HASH in second.stderr
    assert "Nothing was pushed" in second.stderr
    time.sleep(0.2)  # the registry writes its access log after answering
    writes = [
        line
        for line in registry.requests_seen()[since:]
        if line.split(" ", 1)[0] in ("PUT", "POST", "PATCH")
    ]
    assert writes == []
    assert not (tmp_path / "bad.image").exists()


@pytest.mark.parametrize("engine", ["buildah", "none"], ids=["per-package", "engine-less"])
def test_a_hashed_file_needs_hashes_of_what_it_pulls_in_as_pip_does(
    registry, package_index, base_images, tmp_path, engine
):
    """pip's hash-checking mode reaches the distributions a hashed requirement pulls in
    (issue 23, F10): `requests` hashed, its dependencies not. On main the per-package path
    checked the one hash it had and pushed an image with unhashed urllib3, idna, certifi and
    charset-normalizer; now it resolves the hashed set alone and refuses them by name, as
    pip's HashMissing does, before anything is installed or pushed."""
    wheel = next(wheelhouse().glob("requests-*-py3-none-any.whl"))
    version = wheel.name.split("-")[1]
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    codeset = tmp_path / "transitive"
    shutil.copytree(CASES / "requirements-hashed", codeset)
    (codeset / "requirements.txt").write_text(f"requests=={version} --hash=sha256:{digest}\n")
    (codeset / "check.py").write_text("import requests\n")
    since = len(registry.requests_seen())
    done = build(codeset, registry, package_index.extra["url"], base_images["debian"], engine)
    assert done.returncode != 0
    assert "Hashes are required in --require-hashes mode" in done.stderr
    for name in ("certifi", "charset-normalizer", "idna", "urllib3"):
        assert name in done.stderr
    assert "layering: single" not in done.stdout + done.stderr  # refused, not handed on
    time.sleep(0.2)
    writes = [line for line in registry.requests_seen()[since:]
              if line.split(" ", 1)[0] in ("PUT", "POST", "PATCH")]  # fmt: skip
    assert writes == []
    assert not (tmp_path / "transitive.image").exists()

"""End to end, all real: debootstrapped base images in a local registry, a pypiserver index,
buildah builds (chroot isolation, vfs), pushes, and registry lookups."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.builds import build_with_cli, local_build_argv, run_in_image
from tests.support.images import BUILDAH_ENV, remove_local_images
from tests.support.oci import registry_digest

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def build(codeset: Path, registry, index, base: str, out: Path, *extra: str):
    return build_with_cli(codeset, registry, index, base, out, *extra)


def pushes(registry) -> int:
    time.sleep(0.2)  # the registry writes its access log after answering
    return sum(r.startswith("PUT /v2/e2e/trainer/manifests/") for r in registry.requests_seen())


def test_build_cache_and_tag_rules_on_debian_base(
    sklearn_build, registry, package_index, base_images, tmp_path
):
    built_codeset, image, first = sklearn_build
    base = base_images["debian"]
    assert image.startswith(f"{registry.host}/e2e/trainer:") and image in first.stdout
    assert "not in the registry: building" in first.stderr
    digest_file = Path(str(built_codeset.parent / "image") + ".digest")
    # buildah commits straight to the registry; the digest output is what the registry serves.
    assert digest_file.read_text() == registry_digest(image)

    check = run_in_image(
        image, "python", "-c", "import mlflow, sklearn, pandas, six; print(six.__version__)"
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "1.16.0"
    clean = "test ! -e /root/.cache && test ! -e /tmp/mlflow-steps && test ! -e /project/train.py"
    assert run_in_image(image, "sh", "-c", clean).returncode == 0

    # The same codeset, copied elsewhere: one registry lookup, no build, no push, same output.
    codeset = tmp_path / "sklearn"
    shutil.copytree(built_codeset, codeset)
    pushed = pushes(registry)
    again = build(codeset, registry, package_index, base, tmp_path / "again")
    assert again.returncode == 0 and "nothing to build" in again.stderr
    assert (tmp_path / "again").read_text() == image and pushes(registry) == pushed

    # A comment-only change keeps the tag; a code-only change keeps the tag.
    with (codeset / "requirements.txt").open("a") as handle:
        handle.write("\n# a comment, and a blank line above\n")
    (codeset / "train.py").write_text((codeset / "train.py").read_text() + "\n# tweak\n")
    (codeset / "new_module.py").write_text("X = 1\n")
    same = build(codeset, registry, package_index, base, tmp_path / "same")
    assert same.returncode == 0 and (tmp_path / "same").read_text() == image
    assert pushes(registry) == pushed

    # A version change makes a new tag, built and pushed.
    text = (codeset / "requirements.txt").read_text().replace("six==1.16.0", "six==1.17.0")
    (codeset / "requirements.txt").write_text(text)
    changed = build(codeset, registry, package_index, base, tmp_path / "changed")
    assert changed.returncode == 0, changed.stderr[-3000:]
    new_image = (tmp_path / "changed").read_text()
    assert new_image != image and pushes(registry) == pushed + 1
    check = run_in_image(new_image, "python", "-c", "import six; print(six.__version__)")
    remove_local_images(new_image)  # per-package: vfs keeps a full copy per layer
    assert check.stdout.strip() == "1.17.0"


def test_python_env_on_python_shaped_base(registry, package_index, base_images, tmp_path):
    """The official python:3.x shape: `python` on PATH and pip allowed system-wide."""
    out = tmp_path / "image"
    done = build(EXAMPLES / "python-env", registry, package_index, base_images["python"], out)
    assert done.returncode == 0, done.stderr[-3000:]
    check = run_in_image(
        out.read_text(),
        "sh",
        "-c",
        "command -v python && python -c 'import mlflow, six; print(six.__version__)'",
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.split() == ["/opt/mlflow-env/bin/python", "1.16.0"]


def test_failed_install_fails_the_step_with_the_engine_error(
    registry, package_index, base_images, tmp_path
):
    codeset = tmp_path / "broken"
    codeset.mkdir()
    (codeset / "MLproject").write_text("entry_points:\n  main:\n    command: python t.py\n")
    (codeset / "requirements.txt").write_text("no-such-package-mlflow-steps==9.9\n")
    out = tmp_path / "image"
    done = build(codeset, registry, package_index, base_images["debian"], out)
    assert done.returncode != 0
    assert "no-such-package-mlflow-steps" in done.stderr
    assert "build engine `buildah` failed" in done.stderr
    assert not out.exists() and not Path(str(out) + ".digest").exists()


def test_overlay_storage_as_in_the_buildah_builder_image(
    registry, package_index, base_images, tmp_path
):
    """The buildah builder image's configuration: the overlay driver (kernel overlayfs), its
    store in a folder of its own, the image pushed straight to the registry. A namespace of
    its own: its layer cache is empty, so the base is pulled (with the cache of the other
    tests' `e2e/` images, every binary distribution would be mounted, and a pure-Python rest
    installed by the builder without the base)."""
    store = tmp_path / "store"
    conf = tmp_path / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "overlay"\nrunroot = "{store}/run"\ngraphroot = "{store}/graph"\n'
    )
    env = {**BUILDAH_ENV, "CONTAINERS_STORAGE_CONF": str(conf)}
    out = tmp_path / "image"
    argv = local_build_argv(
        EXAMPLES / "python-env",
        registry.host,
        base=base_images["debian"],
        index_url=package_index.extra["url"],
        repository="overlay-store/env",
        output=out,
    )
    try:
        done = subprocess.run(
            [*argv, "--digest-output", f"{out}.digest"], capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert (store / "graph" / "overlay").is_dir()  # the base was pulled into overlay storage
        assert Path(f"{out}.digest").read_text() == registry_digest(out.read_text())
        check = run_in_image(out.read_text(), "python", "-c", "import mlflow, six")
        assert check.returncode == 0, check.stderr
    finally:
        subprocess.run(["buildah", "rmi", "--all", "--force"], capture_output=True, env=env)
        subprocess.run(["umount", "-R", str(store / "graph" / "overlay")], capture_output=True)


def small_codeset(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "MLproject").write_text("entry_points: {main: {command: python -c 'import six'}}\n")
    (root / "requirements.txt").write_text("six==1.17.0\n")
    return root


def repro_build(codeset: Path, registry, index, base: str, repository: str, out: Path):
    argv = local_build_argv(
        codeset,
        registry.host,
        base=base,
        index_url=index.extra["url"],
        repository=repository,
        output=out,
    )
    argv += ["--digest-output", f"{out}.digest", "--mlflow-requirement", ""]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=BUILDAH_ENV
    )


def test_identical_inputs_give_one_digest_in_two_repositories(
    registry, package_index, base_images, tmp_path
):
    codeset = small_codeset(tmp_path / "codeset")
    digests = []
    for repository in ("repro/one", "repro/two"):
        out = tmp_path / repository.replace("/", "-")
        build = repro_build(
            codeset, registry, package_index, base_images["debian"], repository, out
        )
        _, err = build.communicate()
        assert build.returncode == 0, err[-3000:]
        assert "not in the registry: building" in err
        digests.append(Path(f"{out}.digest").read_text())
        assert digests[-1] == registry_digest(out.read_text())
    assert digests[0] == digests[1]


def test_two_builders_racing_on_one_tag_report_the_tagged_digest(
    registry, package_index, base_images, tmp_path
):
    codeset = small_codeset(tmp_path / "codeset")
    outs = [tmp_path / "a", tmp_path / "b"]
    builds = [
        repro_build(codeset, registry, package_index, base_images["debian"], "repro/race", out)
        for out in outs
    ]
    errors = [build.communicate()[1] for build in builds]
    for build, err in zip(builds, errors):
        assert build.returncode == 0, err[-3000:]
    assert all("not in the registry: building" in err for err in errors)  # both built
    reported = [Path(f"{out}.digest").read_text() for out in outs]
    assert reported[0] == reported[1] == registry_digest(outs[0].read_text())

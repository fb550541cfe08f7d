"""A requirements file installs what pip installs from it, on both install paths: uv (images
and the local engine, Python >= 3.8) and pip (older Pythons), against two real indexes
(pypiserver), each compared with what pip 26.3 itself does with the same file (`pip install
--dry-run --report`, or a real install for what only a build shows). The case folders are
tests/cases/requirements-{bom-utf16,pre,two-indexes,config-settings}."""

from __future__ import annotations

import codecs
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_steps.components.builder.backends.recipe import write_files
from mlflow_steps.components.builder.build import plan
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.builder.planning.plan import STAGING
from mlflow_steps.components.builder.planning.resolution import read_pylock, resolved_plan
from mlflow_steps.components.builder.reading import requirements as reqs
from mlflow_steps.components.launcher.local_env import ensure_local_env
from mlflow_steps.stack import build_argv
from tests.support import packages, services
from tests.support.builds import run_in_image
from tests.support.images import BUILDAH_ENV, remove_local_images

CASES = Path(__file__).resolve().parents[2] / "cases"
QUIET = {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    """(first, second): simple-index URLs. The first holds stepsdemo-pre 1.0 and 2.0b1,
    stepsdemo-two 1.0 and the stepsdemo-cfg sdist; the second, stepsdemo-two 2.0 only."""
    root = tmp_path_factory.mktemp("two-indexes")
    first, second = root / "first", root / "second"
    packages.wheel(first, "stepsdemo-pre", "1.0")
    packages.wheel(first, "stepsdemo-pre", "2.0b1")
    packages.wheel(first, "stepsdemo-two", "1.0")
    packages.config_sdist(first, "stepsdemo-cfg", "1.0")
    packages.wheel(second, "stepsdemo-two", "2.0")
    services_ = [services.start_index(d, root / f"{d.name}-index") for d in (first, second)]
    yield tuple(s.extra["url"] for s in services_)
    for service in services_:
        service.stop()


def options(index: str, extra: str = "", **more) -> BuildOptions:
    return BuildOptions(
        pip_index_url=index, pip_extra_index_url=extra, mlflow_requirement="", **more
    )


def stepsdemo(versions: dict[str, str]) -> dict[str, str]:
    return {name: v for name, v in versions.items() if name.startswith("stepsdemo-")}


def pip_itself(requirements: Path, index: str, extra: str, tmp: Path) -> dict[str, str]:
    """What pip 26.3 (this machine's) would install from the file, as pip reads it."""
    report = tmp / "report.json"
    argv = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--no-cache-dir", "--quiet", "--report", str(report), "-r", str(requirements),
            "--index-url", index]  # fmt: skip
    argv += ["--extra-index-url", extra] if extra else []
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **QUIET})
    assert done.returncode == 0, done.stderr
    installs = json.loads(report.read_text())["install"]
    return stepsdemo({i["metadata"]["name"]: i["metadata"]["version"] for i in installs})


def installed(venv: Path, module: str = "") -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    if module:
        code = f"import json, {module}; print(json.dumps({module}.SETTINGS))"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout)
    return found if module else stepsdemo(found)


def uv_path(codeset: Path, opts: BuildOptions, tmp: Path, monkeypatch) -> Path:
    """The local engine's environment (the images' install script, uv on this Python)."""
    monkeypatch.setenv("MLFLOW_STEPS_ENV_CACHE", str(tmp / "envs"))
    lines: list[str] = []
    target = ensure_local_env(plan(codeset, opts), opts, lines.append)
    return target / "venv"


def pip_path(codeset: Path, opts: BuildOptions, tmp: Path) -> Path:
    """The same install script without uv: the path of images whose Python is < 3.8."""
    install = plan(codeset, opts).install
    context = tmp / "pip-context"
    write_files(dict(install.files), context, with_uv=False)
    venv = tmp / "pip-venv"
    env = {
        **os.environ,
        **QUIET,
        **opts.index().install_env(),
        "MLFLOW_STEPS_INDEX_SECRET": "",
        "MLFLOW_STEPS_PYTHON": sys.executable,
        "MLFLOW_STEPS_RUNTIME_PARENT": str(tmp / "runtime"),
    }
    sets = [s.name for s in install.requirement_sets]
    # The download phase (index settings), then the install phase (none), as in an image.
    download = [str(context / STAGING / "download-python-env.sh"), *sets]
    fetched = subprocess.run(["sh", *download], capture_output=True, text=True, env=env)
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    without = {k: v for k, v in env.items() if not k.startswith(("PIP_INDEX", "PIP_EXTRA"))}
    argv = [
        "sh",
        str(context / STAGING / "install-python-env.sh"),
        str(venv),
        "--no-compile-bytecode",
    ]
    done = subprocess.run([*argv, *sets], capture_output=True, text=True, env=without)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "installing with pip" in done.stderr and not done.stdout  # a log, all of it
    return venv


def resolved(codeset: Path, opts: BuildOptions) -> dict[str, str]:
    """The versions `resolve` locks (uv pip compile, as the install runs uv)."""
    install = resolved_plan(plan(codeset, opts).install, opts.index().install_env(), "3.11")
    assert install.lock is not None
    return stepsdemo({d.name: d.version for d in read_pylock(install.lock.decode(), "lock")})


# --- 1. encodings ------------------------------------------------------------------------------


BOMS = ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]


@pytest.mark.parametrize("encoding", BOMS)
def test_a_byte_order_mark_is_read_as_pip_reads_it(encoding):
    from pip._internal.req.req_file import _decode_req_file

    text = "# freeze\r\nstepsdemo-pre==1.0\r\nstepsdemo-two==1.0\r\n"
    data = text.encode(encoding)
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE,
           "utf-32-le": codecs.BOM_UTF32_LE, "utf-32-be": codecs.BOM_UTF32_BE}  # fmt: skip
    data = bom.get(encoding, b"") + data
    assert reqs.decode(data) == _decode_req_file(data, "requirements.txt")
    assert [line for _, line in reqs.logical_lines(reqs.decode(data))] == [
        "stepsdemo-pre==1.0",
        "stepsdemo-two==1.0",
    ]


def test_a_coding_line_is_read_as_pip_reads_it_and_no_locale_is_guessed(tmp_path):
    from pip._internal.req.req_file import _decode_req_file

    data = "# -*- coding: latin-1 -*-\nstepsdemo-pre==1.0 ; platform_version != 'é'\n"
    encoded = data.encode("latin-1")
    assert reqs.decode(encoded) == _decode_req_file(encoded, "r.txt")
    with pytest.raises(UnicodeDecodeError, match="save it as UTF-8 or add a first line"):
        reqs.decode("stepsdemo-pre==1.0 # é\n".encode("latin-1"))
    (tmp_path / "requirements.txt").write_bytes(b"# coding: nope\nsix\n")
    problems: list[str] = []
    reqs.read_requirements_file(tmp_path / "requirements.txt", tmp_path, problems)
    assert problems == [
        "requirements.txt: cannot be read as a requirements file: its coding line names "
        "'nope', which is no encoding Python knows; name one such as utf-8 or latin-1"
    ]


def test_a_powershell_freeze_installs_what_pip_installs(indexes, tmp_path, monkeypatch):
    """requirements.txt in UTF-16 LE with a BOM and CRLF, as `pip freeze >` writes it in
    Windows PowerShell 5: no invisible character in any line or message."""
    codeset = CASES / "requirements-bom-utf16"
    first, _ = indexes
    expected = {"stepsdemo-pre": "1.0", "stepsdemo-two": "1.0"}
    assert pip_itself(codeset / "requirements.txt", first, "", tmp_path) == expected
    opts = options(first)
    assert plan(codeset, opts).install.requirement_sets[0].lines == (
        "stepsdemo-pre==1.0",
        "stepsdemo-two==1.0",
    )
    assert installed(uv_path(codeset, opts, tmp_path, monkeypatch)) == expected


# --- 2. options uv does not read ---------------------------------------------------------------


def test_pre_installs_the_pre_release_pip_installs_on_both_paths(indexes, tmp_path, monkeypatch):
    codeset = CASES / "requirements-pre"
    first, _ = indexes
    expected = {"stepsdemo-pre": "2.0b1"}
    assert pip_itself(codeset / "requirements.txt", first, "", tmp_path) == expected
    opts = options(first)
    assert installed(uv_path(codeset, opts, tmp_path, monkeypatch)) == expected
    assert installed(pip_path(codeset, opts, tmp_path)) == expected
    assert resolved(codeset, opts) == expected


def test_all_releases_and_only_final_reach_uv_as_its_prerelease_settings(
    indexes, tmp_path, monkeypatch
):
    first, _ = indexes
    for lines, version in [
        ("--all-releases stepsdemo-pre\nstepsdemo-pre\n", "2.0b1"),
        ("--all-releases :all:\nstepsdemo-pre\n", "2.0b1"),
        ("--only-final stepsdemo-pre\nstepsdemo-pre>=1.0b1\n", "1.0"),
    ]:
        work = tmp_path / version / str(len(lines))
        shutil.copytree(CASES / "requirements-pre", work / "c")
        (work / "c" / "requirements.txt").write_text(lines)
        expected = {"stepsdemo-pre": version}
        assert pip_itself(work / "c" / "requirements.txt", first, "", work) == expected, lines
        venv = uv_path(work / "c", options(first), work, monkeypatch)
        assert installed(venv) == expected, lines


def test_config_settings_reach_the_build_backend_on_both_paths(indexes, tmp_path, monkeypatch):
    codeset = CASES / "requirements-config-settings"
    first, _ = indexes
    target = tmp_path / "pip-target"
    argv = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--quiet", "--target",
            str(target), "-r", str(codeset / "requirements.txt"), "--index-url", first]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **QUIET})
    assert done.returncode == 0, done.stderr
    settings = subprocess.run(
        [sys.executable, "-c", "import json, stepsdemo_cfg as m; print(json.dumps(m.SETTINGS))"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(target)},
    )  # fmt: skip
    assert json.loads(settings.stdout) == {"flavour": "mint"}
    opts = options(first)
    venv = uv_path(codeset, opts, tmp_path, monkeypatch)
    assert installed(venv, "stepsdemo_cfg") == {"flavour": "mint"}
    assert installed(pip_path(codeset, opts, tmp_path), "stepsdemo_cfg") == {"flavour": "mint"}


# --- 3. index priority -------------------------------------------------------------------------


def test_two_indexes_give_the_best_version_as_pip_does_on_both_paths(
    indexes, tmp_path, monkeypatch
):
    """1.0 on one index, 2.0 on the other: pip takes 2.0 whichever is the extra one; uv's
    own default (the first index that has the package, extra indexes first) would take 1.0
    when 1.0 is on the extra index, under the same tag."""
    codeset = CASES / "requirements-two-indexes"
    first, second = indexes
    expected = {"stepsdemo-two": "2.0"}
    for index, extra in [(first, second), (second, first)]:
        work = tmp_path / ("first" if index == first else "second")
        work.mkdir()
        assert pip_itself(codeset / "requirements.txt", index, extra, work) == expected
        opts = options(index, extra)
        assert installed(uv_path(codeset, opts, work, monkeypatch)) == expected, index
        assert installed(pip_path(codeset, opts, work)) == expected, index
        assert resolved(codeset, opts) == expected, index


def test_a_files_own_index_url_replaces_the_builders_on_both_paths(indexes, tmp_path, monkeypatch):
    """pip reads `--index-url` in the file as replacing the index it was given; uv lets its
    environment win. Both paths follow pip."""
    first, second = indexes
    shutil.copytree(CASES / "requirements-two-indexes", tmp_path / "c")
    requirements = tmp_path / "c" / "requirements.txt"
    requirements.write_text(f"stepsdemo-two\n--index-url {second}\n")
    expected = {"stepsdemo-two": "2.0"}
    assert pip_itself(requirements, first, "", tmp_path) == expected
    opts = options(first)
    assert installed(uv_path(tmp_path / "c", opts, tmp_path, monkeypatch)) == expected
    assert installed(pip_path(tmp_path / "c", opts, tmp_path)) == expected
    assert resolved(tmp_path / "c", opts) == expected


# --- the same in an image, built with buildah --------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("layering", ["single", "per-package"])
def test_an_image_gets_pips_meaning_of_pre_and_two_indexes(
    indexes, registry, base_images, tmp_path, layering
):
    """buildah, the Debian base (Python 3.11: the uv path; per-package: the resolution's
    lock), `--pre` and a package whose best version is on the index given as `pip_index_url`
    while the extra index has an older one: the image holds what pip installs from the file."""
    first, second = indexes
    codeset = tmp_path / "codeset"
    shutil.copytree(CASES / "requirements-pre", codeset)
    (codeset / "requirements.txt").write_text("--pre\nstepsdemo-pre\nstepsdemo-two\n")
    expected = {"stepsdemo-pre": "2.0b1", "stepsdemo-two": "2.0"}
    assert pip_itself(codeset / "requirements.txt", second, first, tmp_path) == expected
    out = tmp_path / "image"
    argv = build_argv(codeset, registry.host, base=base_images["debian"], index_url=second,
                      repository="e2e/pip-meaning", output=out)  # fmt: skip
    argv += ["--pip-extra-index-url", first, "--mlflow-requirement=", f"--layering={layering}"]
    done = subprocess.run(argv, capture_output=True, text=True, env=BUILDAH_ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    image = out.read_text().strip()
    try:
        code = (
            "import importlib.metadata as m, json; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
        )
        ran = run_in_image(image, "/opt/mlflow-env/bin/python", "-c", code)
        assert ran.returncode == 0, ran.stderr
        assert stepsdemo(json.loads(ran.stdout)) == expected
    finally:
        remove_local_images(image)

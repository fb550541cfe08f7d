"""conda.yaml (env_manager=conda) in two phases, issue 23 item 1: the download phase
(download-conda-env.sh) fetches conda packages and the `pip:` section's files with the index
credentials, and runs nothing it fetched; the install phase (install-conda-env.sh) installs
offline, with no index setting and no secret file in reach.

Real: the scripts as the image's RUNs run them, pip, pypiserver with htpasswd (`auth_index`),
a second pypiserver serving a `setup.py` sdist that writes a marker with the environment it
saw. Mocked: `conda` itself. conda channels cannot be reached from this machine and no
miniconda image is here, so a fake `conda` executable (FAKE_CONDA below) stands in: it
records every call (arguments, environment), answers the dry run with the Python it would
link, "downloads" a package file into CONDA_PKGS_DIRS and, offline, checks it is there. The
conda environment's `python` is a venv of this host's Python on PATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_steps.components.builder.backends.recipe import render
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.builder.planning.plan import recipe_file
from mlflow_steps.components.builder.reading.codeset import load_codeset
from mlflow_steps.components.problems import StepError
from tests.conftest import INDEX_USERS

from .test_untrusted_codeset import hostile_sdist_index

FAKE_CONDA = r"""#!{python}
import json, os, sys
args = sys.argv[1:]
with open({log!r}, "a") as out:
    out.write(json.dumps({{"args": args, "environ": dict(os.environ)}}) + "\n")
pkgs = os.environ.get("CONDA_PKGS_DIRS", "")
if args[:1] == ["install"] and "--dry-run" in args:
    version = "%d.%d.1" % sys.version_info[:2]
    print(json.dumps({{"actions": {{"LINK": [{{"name": "python", "version": version}}]}},
                      "success": True}}))
elif args[:1] == ["install"] and "--download-only" in args:
    with open(os.path.join(pkgs, "fakepkg-1.0-0.tar.bz2"), "w") as out:
        out.write("a conda package")
elif args[:1] == ["install"] and "--offline" in args:
    if not os.path.exists(os.path.join(pkgs, "fakepkg-1.0-0.tar.bz2")):
        sys.exit("fake conda: the package was not downloaded")
"""

CONDA_YAML = """\
channels:
  - conda-forge
dependencies:
  - python=3.11
  - mlflow
  - pip
  - pip:
    - hostile==1.0
    - six==1.17.0
variables:
  MY_SETTING: one
"""


def staged_plan(tmp_path: Path, conda_yaml: str) -> Path:
    """The conda plan's files, as the image's COPY puts them in /tmp/mlflow-steps."""
    codeset = tmp_path / "codeset"
    codeset.mkdir()
    (codeset / "MLproject").write_text(
        "conda_env: conda.yaml\nentry_points: {main: {command: x}}\n"
    )
    (codeset / "conda.yaml").write_text(conda_yaml)
    plan = load_codeset(codeset).environment.install_plan(BuildOptions(env_manager="conda"))
    recipe = render(plan)
    staging = tmp_path / "staging"
    for name, data in recipe.files.items():
        if name.startswith("mlflow-steps/"):
            target = staging / name.removeprefix("mlflow-steps/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return staging


def fake_conda(tmp_path: Path) -> tuple[str, Path]:
    """PATH with the fake `conda` and the conda environment's `python` first (a venv with
    pip: never this host's own Python, which the install phase would install into), and the
    log of conda's calls."""
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "condaenv")], check=True)
    bin_dir = tmp_path / "conda-bin"
    bin_dir.mkdir()
    log = tmp_path / "conda-calls.jsonl"
    conda = bin_dir / "conda"
    conda.write_text(FAKE_CONDA.format(python=sys.executable, log=str(log)))
    conda.chmod(0o755)
    return f"{bin_dir}:{tmp_path / 'condaenv' / 'bin'}:/usr/bin:/bin", log


def test_the_pip_section_downloads_with_credentials_and_builds_only_without_them(
    auth_index, tmp_path
):
    with hostile_sdist_index(tmp_path, auth_index.extra["url"]) as (marker, secret, url, password):
        staging = staged_plan(tmp_path, CONDA_YAML)
        path, log = fake_conda(tmp_path)
        env = {"PATH": path, "HOME": str(tmp_path)}
        download = subprocess.run(
            ["sh", str(staging / "download-conda-env.sh")],
            capture_output=True, text=True,
            env={**env, "MLFLOW_STEPS_INDEX_SECRET": str(secret),
                 "MLFLOW_STEPS_PYTHON": sys.executable},
        )  # fmt: skip
        assert download.returncode == 0, download.stderr
        assert not marker.exists(), "the sdist's setup.py ran in the download phase"
        downloaded = sorted(p.name for p in (staging / "wheels").iterdir())
        assert "hostile-1.0.tar.gz" in downloaded  # fetched as a file, not built
        assert any(name.startswith("six-1.17.0-") for name in downloaded)
        assert (staging / "pkgs" / "fakepkg-1.0-0.tar.bz2").exists()
        download_calls = [json.loads(line) for line in log.read_text().splitlines()]
        # conda itself never sees the index settings.
        assert all(password not in json.dumps(call) for call in download_calls)
        assert [c["args"][:1] for c in download_calls] == [["install"], ["install"]]
        assert all("--file" in c["args"] and "--channel=conda-forge" in c["args"]
                   for c in download_calls)  # fmt: skip
        # The install phase: the secret file is gone (the engines mount it for the download
        # RUN only), nothing of the index in the environment.
        moved = secret.with_name("kept-aside")
        secret.rename(moved)
        try:
            install = subprocess.run(
                ["sh", str(staging / "install-conda-env.sh")],
                capture_output=True, text=True,
                env={**env, "MLFLOW_STEPS_RUNTIME_PARENT": str(tmp_path / "runtime"),
                     "PIP_INDEX_URL": url},  # set by mistake: the script unsets it
            )  # fmt: skip
        finally:
            moved.rename(secret)
    assert install.returncode == 0, install.stderr
    assert marker.exists(), "the sdist was not built in the install phase"
    spied = json.loads(marker.read_text())
    assert spied["secret"] == ""
    assert "PIP_INDEX_URL" not in spied["environ"] and "PIP_EXTRA_INDEX_URL" not in spied["environ"]
    assert password not in marker.read_text() and INDEX_USERS["alice"] not in marker.read_text()
    calls = [json.loads(line) for line in log.read_text().splitlines()][len(download_calls) :]
    linked = [c for c in calls if c["args"][:1] == ["install"]]
    assert len(linked) == 1 and "--offline" in linked[0]["args"]
    assert linked[0]["environ"]["CONDA_OFFLINE"] == "true"
    assert ["env", "config", "vars", "set", "--name", "base", "MY_SETTING=one"] in [
        c["args"] for c in calls
    ]
    for call in calls:
        assert password not in json.dumps(call) and "PIP_INDEX_URL" not in call["environ"]
    venv = tmp_path / "condaenv"
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import six; print(six.__version__)"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert check.stdout.strip() == "1.17.0"
    for path in venv.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert password.encode() not in data and INDEX_USERS["alice"].encode() not in data
    for text in (download.stdout, download.stderr, install.stdout, install.stderr):
        assert password not in text and INDEX_USERS["alice"] not in text
    assert not staging.exists()  # the install phase deletes its files, downloads included
    # The runtime's .pth went into the conda environment's site-packages (from its layout).
    pth = list(venv.glob("lib/python3*/site-packages/mlflow_steps_runtime.pth"))
    assert pth and pth[0].read_text().strip() == str(tmp_path / "runtime")


def test_the_install_phase_needs_no_index(tmp_path):
    """With nothing downloaded for the pip section, the install phase fails: pip is run with
    --no-index and no index setting, so it cannot fetch anything itself."""
    staging = staged_plan(tmp_path, CONDA_YAML)
    path, _ = fake_conda(tmp_path)
    (staging / "pkgs").mkdir()
    (staging / "pkgs" / "fakepkg-1.0-0.tar.bz2").write_text("a conda package")
    (staging / "wheels").mkdir()
    install = subprocess.run(
        ["sh", str(staging / "install-conda-env.sh")],
        capture_output=True, text=True,
        env={"PATH": path, "HOME": str(tmp_path), "PIP_INDEX_URL": "https://pypi.org/simple",
             "MLFLOW_STEPS_RUNTIME_PARENT": str(tmp_path / "runtime")},
    )  # fmt: skip
    assert install.returncode != 0
    assert "hostile==1.0" in install.stderr and "from versions: none" in install.stderr


@pytest.mark.parametrize(
    "text, named",
    [
        ('channels: ["conda-forge\\nnodefaults"]\ndependencies: [numpy]\n', "channel"),
        ('dependencies: ["--override-channels"]\n', "dependency"),
        ('dependencies: [numpy]\nvariables: {"A B": x}\n', "variable name"),
        ('dependencies: [numpy]\nvariables: {A: "x\\ny"}\n', "value must be one line"),
    ],
)
def test_conda_lines_that_would_become_options_or_lines_are_refused(tmp_path, text, named):
    codeset = tmp_path / "codeset"
    codeset.mkdir()
    (codeset / "MLproject").write_text(
        "conda_env: conda.yaml\nentry_points: {main: {command: x}}\n"
    )
    (codeset / "conda.yaml").write_text(text)
    with pytest.raises(StepError) as error:
        load_codeset(codeset)
    assert named in str(error.value) and "conda.yaml" in str(error.value)
    assert os.listdir(codeset) == ["MLproject", "conda.yaml"] or sorted(os.listdir(codeset)) == [
        "MLproject",
        "conda.yaml",
    ]


def test_the_download_phase_uses_the_base_pip_when_its_python_has_no_ensurepip(
    package_index, tmp_path
):
    """Some conda Pythons lack ensurepip: `python -m venv` fails there (a wrapper that refuses
    `-m venv` stands in for one), and the download phase uses the base's own pip instead."""
    staging = tmp_path / "staging"
    staging.mkdir()
    for name in ("download-python-env.sh", "fetch-sdists.py", "index-settings.sh"):
        (staging / name).write_bytes(recipe_file(name))
    (staging / "requirements.txt").write_text("six==1.17.0\n")
    python = tmp_path / "python-without-ensurepip"
    python.write_text(
        f'#!/bin/sh\ncase " $* " in *" venv "*) exit 1 ;; esac\nexec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    secret = tmp_path / "mlflow-steps-index"
    secret.write_text(f"PIP_INDEX_URL={package_index.extra['url']}\n")
    done = subprocess.run(
        ["sh", str(staging / "download-python-env.sh"), "requirements.txt"],
        capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MLFLOW_STEPS_PYTHON": str(python),
             "MLFLOW_STEPS_INDEX_SECRET": str(secret), "MLFLOW_STEPS_TARGET_PYTHON": "3.11"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [p.name for p in (staging / "wheels").iterdir()] == ["six-1.17.0-py2.py3-none-any.whl"]
    assert not (staging / "download-venv").exists()


def test_a_target_python_that_is_not_a_version_is_refused(tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "download-python-env.sh").write_bytes(recipe_file("download-python-env.sh"))
    done = subprocess.run(
        ["sh", str(staging / "download-python-env.sh"), "requirements.txt"],
        capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "MLFLOW_STEPS_PYTHON": sys.executable,
             "MLFLOW_STEPS_TARGET_PYTHON": "3.11 --index-url http://evil"},
    )  # fmt: skip
    assert done.returncode != 0 and "must be X.Y" in done.stderr
    assert not (staging / "wheels").exists()

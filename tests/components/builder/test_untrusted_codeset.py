"""Nothing a codeset brings runs beside a credential, all real: pypiserver with htpasswd (the
`auth_index` fixture), a second pypiserver serving a hostile `setup.py` sdist, a path
requirement that spies, a wheel with a `.pth` file, uv and pip as the recipe runs them.

Each hostile package writes a marker when its code runs, holding `os.environ` and whether the
index secret file could be read; the tests assert the marker is never written where a
credential is in reach, and that the password appears in no marker, output or installed file.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

from mlflow_steps.components.builder.planning.plan import find_uv, recipe_file
from mlflow_steps.components.builder.planning.resolution import resolve, uv_env
from mlflow_steps.components.problems import StepError
from tests.conftest import INDEX_USERS
from tests.support import services
from tests.support.require import require

SPY = """
import json, os
secret = {secret!r}
try:
    with open(secret) as handle:
        read = handle.read()
except OSError:
    read = ""
with open({marker!r}, "w") as out:
    json.dump({{"environ": dict(os.environ), "secret": read}}, out)
"""


def hostile_sdist(folder: Path, marker: Path, secret: Path) -> None:
    """`hostile-1.0.tar.gz`: its setup.py writes `marker` (the environment, the secret)."""
    setup = SPY.format(marker=str(marker), secret=str(secret)) + (
        "from setuptools import setup\nsetup(name='hostile', version='1.0')\n"
    )
    files = {"setup.py": setup, "PKG-INFO": "Metadata-Version: 2.1\nName: hostile\nVersion: 1.0\n"}
    with tarfile.open(folder / "hostile-1.0.tar.gz", "w:gz") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(f"hostile-1.0/{name}")
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))


def pth_wheel(folder: Path, marker: Path | str, secret: Path | str) -> Path:
    """A pure wheel shipping `evil.pth`: one import line that runs the spy at every start of
    an interpreter whose site processes that folder."""
    spy = SPY.format(marker=str(marker), secret=str(secret))
    files = {
        "evil.pth": f"import sys; exec({spy!r})\n",
        "evilpkg/__init__.py": "",
        "evilpkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: evilpkg\nVersion: 1.0\n",
        "evilpkg-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    path = folder / "evilpkg-1.0-py3-none-any.whl"
    record = "".join(f"{name},,\n" for name in [*files, "evilpkg-1.0.dist-info/RECORD"])
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr("evilpkg-1.0.dist-info/RECORD", record)
    return path


def spy_project(folder: Path, marker: Path, secret: Path) -> Path:
    """A path requirement whose setup.py spies when it is built."""
    folder.mkdir(parents=True)
    (folder / "setup.py").write_text(
        SPY.format(marker=str(marker), secret=str(secret))
        + "from setuptools import setup\nsetup(name='spy', version='0.1', py_modules=[])\n"
    )
    return folder


@pytest.fixture
def hostile_index(tmp_path):
    folder = tmp_path / "hostile-files"
    folder.mkdir()
    marker = tmp_path / "hostile-ran.json"
    hostile_sdist(folder, marker, tmp_path / "no-secret")
    service = services.start_index(folder, tmp_path / "hostile-index")
    yield service, marker
    service.stop()


def credentialed(index_url: str) -> tuple[str, str]:
    password = quote(INDEX_USERS["alice"], safe="")
    return index_url.replace("http://", f"http://alice:{password}@"), password


@contextmanager
def hostile_sdist_index(tmp_path: Path, index_url: str) -> Iterator[tuple[Path, Path, str, str]]:
    """`hostile-1.0.tar.gz` on an index of its own, and the index secret file naming the
    credentialed `index_url` first and that index as an extra: yields (marker, secret, the
    credentialed URL, the password as quoted in it); the spy writes `marker` if it runs."""
    url, password = credentialed(index_url)
    secret, marker = tmp_path / "mlflow-steps-index", tmp_path / "hostile-ran.json"
    folder = tmp_path / "sdists"
    folder.mkdir()
    hostile_sdist(folder, marker, secret)
    extra = services.start_index(folder, tmp_path / "sdist-index")
    try:
        secret.write_text(
            f"PIP_INDEX_URL={url}\nPIP_EXTRA_INDEX_URL={extra.extra['url']}\n"
            "PIP_TRUSTED_HOST=127.0.0.1\n"
        )
        yield marker, secret, url, password
    finally:
        extra.stop()


def test_resolution_never_builds_an_sdist_a_requirements_file_brings(
    auth_index, hostile_index, monkeypatch
):
    """Issue 23 item 1: `--extra-index-url` to a hostile index and an sdist it serves. uv
    resolves with --no-build: the build fails with a clear message and setup.py never runs."""
    hostile, marker = hostile_index
    url, _ = credentialed(auth_index.extra["url"])
    monkeypatch.setenv("DOCKER_CONFIG", "/tmp/should-not-reach-uv")
    monkeypatch.setenv("MLFLOW_STEPS_INDEX_NETRC", "machine x login y password z")
    lines = [f"--extra-index-url {hostile.extra['url']}", "hostile==1.0", "six==1.17.0"]
    with pytest.raises(StepError) as caught:
        resolve(lines, f"{sys.version_info[0]}.{sys.version_info[1]}", {"PIP_INDEX_URL": url}, {})
    assert "never builds" in str(caught.value) and "layering=single" in str(caught.value)
    assert INDEX_USERS["alice"] not in str(caught.value)
    assert not marker.exists()


def test_uv_gets_no_credential_of_the_builder_but_the_index_settings(monkeypatch):
    for name in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "NETRC", "MLFLOW_STEPS_INDEX_NETRC"):
        monkeypatch.setenv(name, "/secret/" + name)
    env = uv_env({"PIP_INDEX_URL": "https://u:p@h/simple/"}, "/tmp/empty-home")
    assert env["UV_INDEX_URL"] == "https://u:p@h/simple/"
    assert env["HOME"] == "/tmp/empty-home"
    assert not any(value.startswith("/secret/") for value in env.values())


def stage(staging: Path, requirements: str, *, uv: bool) -> None:
    staging.mkdir()
    for name in ("download-python-env.sh", "fetch-sdists.py", "install-python-env.sh",
                 "index-settings.sh", "compile-bytecode.py", "check-libraries.py"):  # fmt: skip
        (staging / name).write_bytes(recipe_file(name))
    if uv:
        shutil.copy2(find_uv(), staging / "uv")
    (staging / "requirements.txt").write_text(requirements)


def phases(staging: Path, venv: Path, secret: Path, home: Path, python: str):
    """The recipe's two RUNs: download with the secret; install with none (as the image build
    mounts it for the first RUN only, and the local engine deletes it in between)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "MLFLOW_STEPS_PYTHON": python}
    download = subprocess.run(
        ["sh", str(staging / "download-python-env.sh"), "requirements.txt"],
        capture_output=True, text=True, env={**env, "MLFLOW_STEPS_INDEX_SECRET": str(secret)},
    )  # fmt: skip
    if download.returncode != 0:
        return download, None
    moved = secret.with_name("kept-aside")
    secret.rename(moved)  # gone while the install phase runs, as the engines guarantee
    try:
        install = subprocess.run(
            ["sh", str(staging / "install-python-env.sh"), str(venv), "--compile-bytecode",
             "requirements.txt"],
            capture_output=True, text=True, env={**env, "MLFLOW_STEPS_INDEX_SECRET": ""},
        )  # fmt: skip
    finally:
        moved.rename(secret)
    return download, install


@pytest.mark.parametrize("with_uv", [True, False], ids=["uv", "pip"])
def test_a_path_requirement_and_a_pth_wheel_never_see_the_index_credentials(
    auth_index, tmp_path, with_uv
):
    """Issue 23 item 2: a path requirement's setup.py runs in the install phase only, where
    neither the environment nor the secret file holds the password; a wheel's `.pth` never
    runs during the build (bytecode and library checks start the venv's Python -I -S)."""
    if with_uv:
        require(find_uv() is not None, "needs uv")
    url, password = credentialed(auth_index.extra["url"])
    secret = tmp_path / "mlflow-steps-index"
    secret.write_text(f"PIP_INDEX_URL={url}\nPIP_TRUSTED_HOST=127.0.0.1\n")
    staging = tmp_path / "staging"
    built, pth_ran = tmp_path / "spy-built.json", tmp_path / "pth-ran.json"
    spy_project(tmp_path / "spy", built, secret)
    wheel = pth_wheel(tmp_path, pth_ran, secret)
    stage(staging, "six==1.17.0\n./codeset/spy\n", uv=with_uv)
    shutil.copytree(tmp_path / "spy", staging / "codeset" / "spy")
    shutil.copy2(wheel, staging / "codeset" / wheel.name)
    with (staging / "requirements.txt").open("a") as handle:
        handle.write(f"./codeset/{wheel.name}\n")
    venv = tmp_path / "venv"
    download, install = phases(staging, venv, secret, tmp_path, sys.executable)
    assert download.returncode == 0, download.stderr
    assert install is not None and install.returncode == 0, install.stderr
    assert (
        "installing with uv" if with_uv else "installing with pip"
    ) in install.stderr and not install.stdout  # a log, all of it
    # The path requirement was built, in the install phase, with no credential in reach.
    assert built.exists()
    spied = built.read_text()
    assert INDEX_USERS["alice"] not in spied and password not in spied
    assert '"secret": ""' in spied
    # The .pth wheel is installed, and nothing it ships ran.
    assert list(venv.glob("lib/python3*/site-packages/evil.pth"))
    assert not pth_ran.exists()
    # The password is nowhere in the output or the venv.
    for text in (download.stdout, download.stderr, install.stdout, install.stderr):
        assert INDEX_USERS["alice"] not in text and password not in text
    for path in venv.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert INDEX_USERS["alice"].encode() not in data and password.encode() not in data
    # The .pth is live: a plain start of the venv's Python runs it (so the check above means
    # something).
    subprocess.run([str(venv / "bin" / "python"), "-c", "pass"], check=True)
    assert pth_ran.exists()


def test_the_download_phase_never_builds_an_sdist_from_a_second_index(
    auth_index, hostile_index, tmp_path
):
    """A requirements file naming a hostile index and its sdist: the download phase fetches
    wheels only, fails saying why, and the sdist's setup.py never runs."""
    hostile, marker = hostile_index
    url, password = credentialed(auth_index.extra["url"])
    secret = tmp_path / "mlflow-steps-index"
    secret.write_text(f"PIP_INDEX_URL={url}\n")
    staging = tmp_path / "staging"
    requirements = f"--extra-index-url {hostile.extra['url']}\nhostile==1.0\nsix==1.17.0\n"
    stage(staging, requirements, uv=False)
    download, install = phases(staging, tmp_path / "venv", secret, tmp_path, sys.executable)
    assert download.returncode != 0 and install is None
    assert "never builds a package" in download.stderr
    assert not marker.exists()
    assert password not in download.stderr + download.stdout
    assert not os.path.exists(tmp_path / "venv")


@pytest.mark.parametrize("with_uv", [True, False], ids=["uv", "pip"])
def test_an_index_sdist_is_fetched_unbuilt_and_built_without_credentials(
    auth_index, tmp_path, with_uv
):
    """An exact pin with only an sdist on a configured index: the download phase fetches the
    file (fetch-sdists.py) and never runs it; the install phase builds it with no credential
    in reach."""
    if with_uv:
        require(find_uv() is not None, "needs uv")
    with hostile_sdist_index(tmp_path, auth_index.extra["url"]) as (marker, secret, _, password):
        staging = tmp_path / "staging"
        stage(staging, "hostile==1.0\nsix==1.17.0\n", uv=with_uv)
        venv = tmp_path / "venv"
        download = subprocess.run(
            ["sh", str(staging / "download-python-env.sh"), "requirements.txt"],
            capture_output=True, text=True,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                 "MLFLOW_STEPS_PYTHON": sys.executable, "MLFLOW_STEPS_INDEX_SECRET": str(secret)},
        )  # fmt: skip
        assert download.returncode == 0, download.stderr
        assert not marker.exists()  # fetched, not built
        assert (staging / "wheels" / "hostile-1.0.tar.gz").exists()
        _, install = phases(staging, venv, secret, tmp_path, sys.executable)
    assert install is not None and install.returncode == 0, install.stderr
    spied = marker.read_text()  # built, in the install phase
    assert INDEX_USERS["alice"] not in spied and password not in spied
    assert '"secret": ""' in spied


@pytest.mark.parametrize("name", ["hostile", "hostile-1.0.tbz", "HOSTILE-1.0.TAR.GZ"])
def test_a_direct_reference_to_an_sdist_of_any_name_is_built_in_the_install_phase_only(
    auth_index, name, tmp_path
):
    """pip builds an archive of any name, or of none, even with --only-binary :all:. Every
    direct reference that is not a wheel is left to the install phase, which has no secret."""
    folder = tmp_path / "www"
    folder.mkdir()
    marker, secret = tmp_path / "hostile-ran.json", tmp_path / "mlflow-steps-index"
    hostile_sdist(folder, marker, secret)
    (folder / "hostile-1.0.tar.gz").rename(folder / name)
    port = services.free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "-b", "127.0.0.1", "-d", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        services.serving(services.Service(f"127.0.0.1:{port}", server, tmp_path / "log", {}),
                         f"http://127.0.0.1:{port}/", ok=(200,))  # fmt: skip
        url, password = credentialed(auth_index.extra["url"])
        secret.write_text(f"PIP_INDEX_URL={url}\n")
        staging = tmp_path / "staging"
        stage(staging, f"hostile @ http://127.0.0.1:{port}/{name}\n", uv=False)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "MLFLOW_STEPS_PYTHON": sys.executable,
        }
        download = subprocess.run(
            ["sh", str(staging / "download-python-env.sh"), "requirements.txt"],
            capture_output=True, text=True, env={**env, "MLFLOW_STEPS_INDEX_SECRET": str(secret)},
        )  # fmt: skip
        assert not marker.exists(), "the sdist's code ran in the download phase"
        assert password not in download.stderr
    finally:
        server.terminate()
        server.wait()

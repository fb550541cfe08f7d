"""The install script's pip fallback (no uv in the context), run for real on this host against
the local package index, as it runs inside a base image without uv or with Python < 3.8."""

from __future__ import annotations

import shutil
import subprocess

from mlflow_steps.components.builder.planning.plan import recipe_file

SCRIPTS = (
    "download-python-env.sh",
    "fetch-sdists.py",
    "install-python-env.sh",
    "index-settings.sh",
    "compile-bytecode.py",
    "check-libraries.py",
)


def test_pip_fallback_installs_from_the_index_and_keeps_no_cache(package_index, tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    for name in SCRIPTS:
        (staging / name).write_bytes(recipe_file(name))
    (staging / "requirements.txt").write_text("six==1.16.0\n")
    venv = tmp_path / "venv"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PIP_INDEX_URL": package_index.extra["url"],
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_CONFIG_FILE": "/dev/null",
    }
    done = install(staging, venv, "--no-compile-bytecode", ["requirements.txt"], env)
    assert done.returncode == 0, done.stderr
    assert "installing with pip" in done.stderr and not done.stdout  # a log, all of it
    check = subprocess.run(
        [str(venv / "bin/python"), "-c", "import six; print(six.__version__)"],
        capture_output=True,
        text=True,
    )
    assert check.stdout.strip() == "1.16.0"
    assert not (tmp_path / ".cache" / "pip").exists()
    pth = list(venv.glob("lib/python3*/site-packages/mlflow_steps_runtime.pth"))
    assert pth and pth[0].read_text().strip() == "/opt/mlflow-steps"
    assert shutil.which("uv") is None or "uv" not in done.stderr.split()


def install(staging, venv, flag: str, files: list[str], env: dict[str, str]):
    """The recipe's two phases, as the image's two RUNs run them: the download phase (with the
    index settings in `env`), then the install phase (without them). Returns the
    CompletedProcess of the phase that failed, else the install phase's (stdout of both)."""
    download = subprocess.run(
        ["sh", str(staging / "download-python-env.sh"), *files],
        capture_output=True,
        text=True,
        env=env,
    )
    if download.returncode != 0:
        return download
    quiet = {k: v for k, v in env.items() if not k.startswith(("PIP_INDEX", "PIP_EXTRA"))}
    quiet.pop("MLFLOW_STEPS_INDEX_SECRET", None)
    done = subprocess.run(
        ["sh", str(staging / "install-python-env.sh"), str(venv), flag, *files],
        capture_output=True,
        text=True,
        env=quiet,
    )
    done.stdout = download.stdout + done.stdout
    done.stderr = download.stderr + done.stderr
    return done


def tiny_wheel(directory, name: str = "tinypkg"):
    """A wheel with a package and its own tests folder."""
    import zipfile

    path = directory / f"{name}-1.0-py3-none-any.whl"
    files = {
        f"{name}/__init__.py": "VALUE = 1\n",
        f"{name}/core.py": "def f():\n    return 2\n",
        f"{name}/tests/test_core.py": "def test_f():\n    assert True\n",
        f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{name}-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = "".join(f"{n},,\n" for n in [*files, f"{name}-1.0.dist-info/RECORD"])
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
        archive.writestr(f"{name}-1.0.dist-info/RECORD", record)
    return path


def test_bytecode_is_unchecked_hash_and_skips_test_folders(tmp_path):
    """The uv path, as in images and the local engine: .pyc flags 1 (unchecked hash)."""
    import sys

    from mlflow_steps.components.builder.backends.recipe import find_uv

    staging = tmp_path / "staging"
    staging.mkdir()
    for name in SCRIPTS:
        (staging / name).write_bytes(recipe_file(name))
    shutil.copy2(find_uv(), staging / "uv")
    (staging / "requirements.txt").write_text(f"{tiny_wheel(tmp_path)}\n")
    venv = tmp_path / "venv"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MLFLOW_STEPS_PYTHON": sys.executable}
    done = install(staging, venv, "--compile-bytecode", ["requirements.txt"], env)
    assert done.returncode == 0, done.stderr
    assert "mlflow-steps: bytecode for" in done.stderr and not done.stdout  # a log line
    package = next(venv.glob("lib/python3*/site-packages/tinypkg"))
    compiled = sorted(p.name.split(".")[0] for p in package.rglob("*.pyc"))
    assert compiled == ["__init__", "core"]  # tests/ kept, not compiled
    assert (package / "tests" / "test_core.py").exists()
    flags = int.from_bytes(
        (next(package.glob("__pycache__/core.*.pyc"))).read_bytes()[4:8], "little"
    )
    assert flags == 1


def test_index_settings_come_from_the_build_secret_file_on_the_pip_path(auth_index, tmp_path):
    """The install script reads the build secret (NAME=value lines, credentials included) as an
    image build mounts it, and pip, the path of Pythons older than 3.8, gets through an index
    that requires them; the shell never expands the value ($$ and @ in the password)."""
    from urllib.parse import quote

    from tests.conftest import INDEX_USERS

    staging = tmp_path / "staging"
    staging.mkdir()
    for name in SCRIPTS:
        (staging / name).write_bytes(recipe_file(name))
    (staging / "requirements.txt").write_text("six==1.17.0\n")
    password = quote(INDEX_USERS["alice"], safe="")
    url = auth_index.extra["url"].replace("http://", f"http://alice:{password}@")
    secret = tmp_path / "mlflow-steps-index"
    secret.write_text(f"PIP_INDEX_URL={url}\nPIP_TRUSTED_HOST=127.0.0.1\nOTHER=ignored\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PIP_CONFIG_FILE": "/dev/null",
        "MLFLOW_STEPS_INDEX_SECRET": str(secret),
    }
    venv = tmp_path / "venv"
    done = install(staging, venv, "--no-compile-bytecode", ["requirements.txt"], env)
    assert done.returncode == 0, done.stderr
    assert "installing with pip" in done.stderr and not done.stdout  # a log, all of it
    assert (next(venv.glob("lib/python3*/site-packages/six.py"))).exists()
    assert INDEX_USERS["alice"] not in done.stdout + done.stderr
    assert password not in done.stdout + done.stderr

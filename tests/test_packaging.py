"""What a user of a release gets: the wheel and sdist that `python -m build` makes (the wheel
is built from the sdist, so the sdist is complete too), checked by `twine check`, installed
into fresh venvs (with and without `[engines]`) and used from there: `--help`, `inspect`,
`build --help`, `generate`, and one real local `run` against the tests' package index.
An editable install imports under the project's own namespace as well."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The folders whose files make the package (the catalog is generated output, not package).
PACKAGE_FOLDERS = {
    "mlflow_steps": "mlflow_steps",
    "components": "mlflow_steps/components",
    "generators": "mlflow_steps/generators",
    "pipelines": "mlflow_steps/pipelines",
}
CHECK = (
    "import importlib.util, mlflow_steps.components.builder.build, mlflow_steps.generators, "
    "mlflow_steps.pipelines, mlflow_steps.components.runtime; "
    "from mlflow_steps.components.builder.planning.plan import runtime_files, recipe_file; "
    "assert runtime_files() and recipe_file('install-python-env.sh'); "
    "assert importlib.util.find_spec('components') is None; "
    "assert importlib.util.find_spec('generators') is None; "
    "print(mlflow_steps.components.__file__)"
)
# A codeset whose environment is only what the builder adds (MLflow): the run logs a file
# under `model/` and prints to its own stdout, which must not reach the step's stdout.
TINY_MLPROJECT = """\
name: tiny
entry_points:
  main:
    command: "python log.py"
"""
TINY_ENTRY = """\
import mlflow
print("the entry point's own output")
mlflow.log_text("tiny", "model/tiny.txt")
"""


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    """{"wheel": ..., "sdist": ...} from `python -m build` (uv installs the build backend)."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--installer", "uv", "-o", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {"wheel": next(out.glob("*.whl")), "sdist": next(out.glob("*.tar.gz"))}


def fresh_venv(path: Path, requirement: str) -> Path:
    """A venv with nothing but `requirement` and its dependencies; returns its bin folder."""
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(path)], check=True)
    python = path / "bin" / "python"
    subprocess.run(["uv", "pip", "install", "-q", "--python", str(python), requirement], check=True)
    return path / "bin"


def cli(bin_dir: Path, *argv: str, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [str(bin_dir / "mlflow-steps"), *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def test_twine_check_passes_on_wheel_and_sdist(dist):
    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", dist["wheel"], dist["sdist"]],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2


def test_every_tracked_file_of_the_package_folders_is_in_the_wheel(dist):
    """No package, module or data file can be left out: every file git tracks under the
    package folders is in the wheel, at its namespaced path; nothing installs a bare
    top-level `components`, `generators` or `tests`."""
    tracked = subprocess.run(
        ["git", "ls-files", *PACKAGE_FOLDERS], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split()
    expected = {
        PACKAGE_FOLDERS[name.split("/", 1)[0]] + "/" + name.split("/", 1)[1]
        for name in tracked
        if not name.startswith("pipelines/catalog/")
    }
    assert "mlflow_steps/components/launcher/run.py" in expected
    names = set(zipfile.ZipFile(dist["wheel"]).namelist())
    assert expected - names == set()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"mlflow_steps", "mlflow_steps-0.1.0.dist-info"}, tops


def test_wheel_without_engines_works_from_a_fresh_venv(dist, package_index, tmp_path):
    bin_dir = fresh_venv(tmp_path / "venv", str(dist["wheel"]))
    work = tmp_path / "work"
    work.mkdir()
    for argv in (["--help"], ["build", "--help"], ["run", "--help"], ["generate", "--help"]):
        done = cli(bin_dir, *argv, cwd=work)
        assert done.returncode == 0 and "usage: mlflow-steps" in done.stdout, done.stderr
    done = cli(bin_dir, "inspect", str(ROOT / "examples" / "sklearn-pip"), cwd=work)
    assert done.returncode == 0, done.stderr
    assert "environment:  pip (requirements.txt)" in done.stdout
    done = cli(bin_dir, "generate", "--out", str(work / "catalog"), cwd=work)
    assert done.returncode == 1
    assert "pip install 'mlflow-steps[engines]'" in done.stderr
    assert not (work / "catalog").exists()

    # One real local run: stdout is the model URL alone; the codeset folder stays untouched;
    # MLflow's store and artifacts go to the working directory.
    codeset = tmp_path / "tiny"
    codeset.mkdir()
    (codeset / "MLproject").write_text(TINY_MLPROJECT)
    (codeset / "log.py").write_text(TINY_ENTRY)
    (codeset / "requirements.txt").write_text("six==1.17.0\n")
    before = sorted(p.relative_to(codeset) for p in codeset.rglob("*"))
    env = {"MLFLOW_STEPS_ENV_CACHE": str(tmp_path / "envs")}
    env.update({k: "" for k in os.environ if k.startswith("MLFLOW_TRACKING")})
    index = ["--pip-index-url", package_index.extra["url"]]
    done = cli(bin_dir, "run", str(codeset), "--engine", "local", *index, cwd=work, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    (url,) = done.stdout.splitlines()
    assert url.startswith(f"{work}/mlruns/") and url.endswith("/model"), url
    assert "the entry point's own output" in done.stderr
    assert Path(url, "tiny.txt").read_text() == "tiny"
    assert sorted(p.relative_to(codeset) for p in codeset.rglob("*")) == before
    assert (work / "mlflow.db").exists()


def test_wheel_with_engines_generates_the_committed_catalog(dist, tmp_path):
    bin_dir = fresh_venv(tmp_path / "venv", f"{dist['wheel']}[engines]")
    out = tmp_path / "catalog"
    done = cli(bin_dir, "generate", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    committed = ROOT / "pipelines" / "catalog"
    written = catalog_files(out)
    assert written and written == catalog_files(committed)


def catalog_files(folder: Path) -> dict[Path, str]:
    """{path: text}, without the kfp compiler's `sdkVersion:` line (the fresh venv may resolve
    a newer kfp than the one that wrote the committed catalog)."""
    return {
        p.relative_to(folder): re.sub(r"(?m)^sdkVersion: .*\n", "", p.read_text())
        for p in folder.rglob("*")
        if p.is_file()
    }


def make_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=False, system_site_packages=True).create(path)
    return path / "bin" / "python"


def test_editable_install_imports_under_the_namespace(tmp_path):
    python = make_venv(tmp_path / "venv")
    subprocess.run(
        ["uv", "pip", "install", "--python", str(python), "--no-deps", "-q", "-e", str(ROOT)],
        check=True,
    )
    done = subprocess.run([str(python), "-c", CHECK], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == ROOT / "components" / "__init__.py"
    cli = subprocess.run(
        [str(python), "-m", "mlflow_steps", "--version"], capture_output=True, text=True
    )
    assert cli.stdout.strip().startswith("mlflow-steps ")

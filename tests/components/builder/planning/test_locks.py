"""Locks installed as locks (uv.lock + pyproject.toml, pylock.toml, requirements with --hash)
and the `resolve` input's resolution, against the real local index (pypiserver). The install
script runs for real on this host, on its uv path and on its pip path."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_steps.components.builder.build import plan
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.builder.planning.plan import LOCK_FILE, STAGING, find_uv
from mlflow_steps.components.builder.planning.resolution import (
    plan_distributions,
    read_pylock,
    resolve,
)
from mlflow_steps.components.builder.reading.codeset import load_codeset
from mlflow_steps.components.problems import StepError

CASES = Path(__file__).resolve().parents[3] / "cases"
LOCK_CASES = ("uv-project", "pylock", "requirements-hashed")
SIX_WHEEL = "sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"


def install_plan(codeset: Path, **options):
    return load_codeset(codeset).environment.install_plan(BuildOptions(**options))


@pytest.mark.parametrize("case", LOCK_CASES)
def test_every_lock_kind_becomes_one_hash_checked_set(case):
    """uv.lock (through `uv export`), pylock.toml and hashed requirements: the same lines."""
    install = install_plan(CASES / case, mlflow_requirement="")
    (locked,) = install.requirement_sets
    assert locked.locked and locked.lines[0] == "--require-hashes"
    assert locked.lines[1].startswith("six==1.16.0") and SIX_WHEEL in locked.lines[1]
    assert (install.lock is not None) == (case != "requirements-hashed")


def test_mlflow_addition_is_a_step_of_its_own_constrained_by_the_lock():
    install = install_plan(CASES / "pylock")
    assert [s.name for s in install.requirement_sets] == [
        "requirements.txt",
        "mlflow-requirements.txt",
    ]
    addition = install.requirement_sets[1]
    assert addition.lines == ("-c mlflow-constraints.txt", "mlflow-skinny")
    assert install.files[f"{STAGING}/mlflow-constraints.txt"] == b"six==1.16.0\n"
    assert any("a lock without MLflow" in note for note in install.notes)


def test_some_hashes_but_not_all_is_refused_naming_the_line(tmp_path):
    shutil.copytree(CASES / "requirements-hashed", tmp_path / "c")
    with (tmp_path / "c" / "requirements.txt").open("a") as handle:
        handle.write("numpy==2.4.6\n")
    # pip's hash-checking mode, in pip's words (test_hash_mode.py has every case)
    with pytest.raises(StepError, match=r"Hashes are required in --require-hashes mode.*numpy"):
        plan(tmp_path / "c", BuildOptions())


def test_uv_project_needs_both_files_as_mlflow_detects_it(tmp_path):
    shutil.copytree(CASES / "uv-project", tmp_path / "c")
    (tmp_path / "c" / "pyproject.toml").unlink()
    (tmp_path / "c" / "requirements.txt").write_text("six\n")
    assert load_codeset(tmp_path / "c").environment.kind == "pip"


def test_the_lock_is_part_of_the_tag(tmp_path):
    shutil.copytree(CASES / "pylock", tmp_path / "c")
    lock = tmp_path / "c" / "pylock.toml"
    first = plan(tmp_path / "c", BuildOptions()).tag
    lock.write_text(lock.read_text().replace("8abb2f1d", "8abb2f1e"))
    assert plan(tmp_path / "c", BuildOptions()).tag != first


def test_a_lock_from_a_directory_or_vcs_is_refused():
    text = '[[packages]]\nname = "p"\ndirectory = { path = "." }\n'
    with pytest.raises(StepError, match="comes from a directory or a VCS checkout"):
        read_pylock(text, "pylock.toml")


def locked(name: str = "six", version: str = "1.17.0", marker: str = "",
           url: str = "http://index/six-1.17.0-py2.py3-none-any.whl") -> str:  # fmt: skip
    file = url.rsplit("/", 1)[-1]
    return (
        f"[[packages]]\nname = {name!r}\nversion = {version!r}\n"
        + (f"marker = {marker!r}\n" if marker else "")
        + f'wheels = [{{ name = "{file}", url = {url!r}, hashes = {{ sha256 = "{"a" * 64}" }} }}]\n'
    )


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        # A newline in a marker or a version would be a line of its own in the requirements
        # that uv and pip install (`locked_lines`): an index, an include, an option.
        ({"marker": 'python_version >= "3"\n--index-url http://evil/simple'}, "the marker"),
        ({"version": "1.0 --index-url http://evil/simple"}, "the version"),
        ({"version": "1.0\n"}, "the version"),  # packaging's Version() admits it
        ({"version": "\u20281.0"}, "the version"),
        ({"name": "../../simple/x"}, "the name"),
        # Written as the download's file name: `../../x.whl` beside the builder's own files.
        ({"url": "http://index/p/..%2F..%2F..%2Ftmp%2Fevil.whl"}, "not a plain file name"),
        ({"url": "http://index/p/.hidden.whl"}, "not a plain file name"),
    ],
)
def test_a_lock_field_outside_its_grammar_is_refused_naming_it(fields, named):
    with pytest.raises(StepError, match=named) as raised:
        read_pylock(locked(**fields), "pylock.toml")
    assert "\n--index-url" not in str(raised.value)


def test_a_file_whose_hashes_are_not_a_table_is_a_clean_error():
    text = locked().replace('hashes = { sha256 = "' + "a" * 64 + '" }', 'hashes = "x"')
    with pytest.raises(StepError, match="a file without a sha256 hash"):
        read_pylock(text, "pylock.toml")


def test_a_locks_marker_is_written_as_packaging_reads_it():
    (dist,) = read_pylock(locked(marker="python_version>='3.9'"), "pylock.toml")
    assert dist.marker == 'python_version >= "3.9"'


def test_the_download_never_joins_an_odd_file_name_to_its_folder():
    from mlflow_steps.components.builder.backends.layered.host_install import wheel_name
    from mlflow_steps.components.builder.backends.layered.wheels import Pin

    odd = Pin("six", "1.17.0", "http://index/..%2Fsix-1.17.0-py3-none-any.whl", "a" * 64, 1, True)
    with pytest.raises(StepError, match="not plain"):
        wheel_name(odd)


def run_install(install, staging: Path, venv: Path, index_url: str, with_uv: bool):
    staging.mkdir()
    for name, data in install.files.items():
        if name.startswith(f"{STAGING}/"):
            (staging / name.split("/", 1)[1]).write_bytes(data)
    uv = find_uv()
    if with_uv:
        assert uv, "uv is a dependency of mlflow-steps"
        shutil.copy2(uv, staging / "uv")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(staging.parent),
        "PIP_INDEX_URL": index_url,
        "PIP_CONFIG_FILE": "/dev/null",
        "MLFLOW_STEPS_PYTHON": sys.executable,
    }
    names = [s.name for s in install.requirement_sets]
    # The recipe's two phases: download (the index settings), then install (none).
    download = subprocess.run(
        ["sh", str(staging / "download-python-env.sh"), *names],
        capture_output=True,
        text=True,
        env=env,
    )
    if download.returncode != 0:
        return download
    env.pop("PIP_INDEX_URL")
    argv = ["sh", str(staging / "install-python-env.sh"), str(venv), "--no-compile-bytecode"]
    done = subprocess.run([*argv, *names], capture_output=True, text=True, env=env)
    done.stdout = download.stdout + done.stdout
    return done


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_a_lock_installs_exactly_and_a_tampered_hash_fails_naming_the_package(
    installer, package_index, tmp_path
):
    """The index also has six 1.17.0: the lock's 1.16.0 is what gets installed."""
    install = install_plan(CASES / "requirements-hashed", mlflow_requirement="")
    url = package_index.extra["url"]
    done = run_install(install, tmp_path / "s1", tmp_path / "v1", url, installer == "uv")
    assert done.returncode == 0, done.stderr
    assert f"installing with {installer}" in done.stderr and not done.stdout
    version = subprocess.run(
        [str(tmp_path / "v1/bin/python"), "-c", "import six; print(six.__version__)"],
        capture_output=True,
        text=True,
    )
    assert version.stdout.strip() == "1.16.0"

    shutil.copytree(CASES / "requirements-hashed", tmp_path / "bad")
    lock = tmp_path / "bad" / "requirements.txt"
    lock.write_text(lock.read_text().replace("8abb2f1d", "8abb2f1e"))
    tampered = install_plan(tmp_path / "bad", mlflow_requirement="")
    failed = run_install(tampered, tmp_path / "s2", tmp_path / "v2", url, installer == "uv")
    assert failed.returncode != 0
    assert "six" in failed.stderr and "hash" in failed.stderr.lower()


def test_resolution_pins_versions_hashes_and_wheels_from_the_index(package_index):
    url = package_index.extra["url"].replace("://", "://someone:not-a-secret@")
    resolution = resolve(["six"], "3.11", {"PIP_INDEX_URL": url})
    (six,) = resolution.distributions
    assert (six.name, six.version) == ("six", "1.17.0")  # the newest on the index
    assert [w.name for w in six.wheels] == ["six-1.17.0-py2.py3-none-any.whl"]
    assert six.hashes and six.hashes[0].startswith("sha256:")
    assert "not-a-secret" not in resolution.pylock and "someone" not in resolution.pylock


def test_resolve_locks_the_plan_and_keeps_the_lock_in_the_image(package_index, tmp_path):
    (tmp_path / "MLproject").write_text("entry_points: {main: {command: python t.py}}\n")
    (tmp_path / "requirements.txt").write_text("six\n")
    options = dict(pip_index_url=package_index.extra["url"], base_image="python:3.11")
    loose = plan(tmp_path, BuildOptions(**options, mlflow_requirement=""))
    resolved = plan(tmp_path, BuildOptions(**options, mlflow_requirement="", resolve=True))
    again = plan(tmp_path, BuildOptions(**options, mlflow_requirement="", resolve=True))
    assert resolved.tag == again.tag != loose.tag
    (locked,) = resolved.install.requirement_sets
    assert locked.locked and locked.lines[1].startswith("six==1.17.0 --hash=sha256:")
    assert resolved.install.lock and b'version = "1.17.0"' in resolved.install.lock
    assert resolved.recipe and f"COPY {LOCK_FILE} /opt/mlflow-env/pylock.toml" in (
        resolved.recipe.dockerfile
    )
    assert loose.install.lock is None


def test_resolve_honours_the_codesets_constraints_files(package_index, tmp_path):
    (tmp_path / "MLproject").write_text("entry_points: {main: {command: python t.py}}\n")
    (tmp_path / "requirements.txt").write_text("-c constraints.txt\nsix\n")
    (tmp_path / "constraints.txt").write_text("six==1.16.0\n")
    options = BuildOptions(
        pip_index_url=package_index.extra["url"],
        base_image="python:3.11",
        mlflow_requirement="",
        resolve=True,
    )
    (locked,) = plan(tmp_path, options).install.requirement_sets
    assert any(line.startswith("six==1.16.0 --hash=") for line in locked.lines)


@pytest.mark.parametrize("case", ["pylock", "requirements-hashed"])
def test_plan_distributions_names_every_wheel_from_the_lock_or_the_index(case, package_index):
    """What the layered assembly reads: from the lock (pylock) or resolved (hashed lines)."""
    install = install_plan(CASES / case, mlflow_requirement="")
    (six,) = plan_distributions(install, {"PIP_INDEX_URL": package_index.extra["url"]}, "3.11")
    assert (six.name, six.version) == ("six", "1.16.0")
    assert "six-1.16.0-py2.py3-none-any.whl" in [w.name for w in six.wheels]
    assert SIX_WHEEL in six.hashes


def test_a_lock_nested_too_deeply_is_a_clean_error():
    from mlflow_steps.components.builder.planning.resolution import read_pylock

    with pytest.raises(StepError, match="nested too deeply"):
        read_pylock('lock-version = "1.0"\nx = ' + "[" * 200000 + "]" * 200000, "pylock.toml")

"""pip's hash-checking mode for a codeset's own requirements (issue 23, F10): once any
requirement has a `--hash`, every requirement must be pinned with `==` and carry a hash, as
pip 26.3 decides it (`cli/req_command.py`, `operations/prepare.py`). The unit cases read lines
as the builder reads a file; the end-to-end case runs `mlflow-steps inspect` and `build` on a
partly hashed codeset against a real pypiserver with htpasswd (its access log read) and a real
registry, and proves the refusal comes before anything is downloaded or pushed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_steps.components.builder.backends.layered.wheels import Pin
from mlflow_steps.components.builder.planning.hash_pins import (
    MISSING_HEAD,
    UNPINNED_HEAD,
    hash_mode_sets,
    unhashed,
)
from mlflow_steps.components.builder.planning.plan import InstallPlan, RequirementSet
from mlflow_steps.components.builder.reading import requirements as reqs
from tests.support import services
from tests.support.builds import local_build_argv
from tests.support.images import BUILDAH_ENV, wheelhouse
from tests.support.require import require_tools

CASES = Path(__file__).resolve().parents[2] / "cases"
SIX = "six==1.16.0 --hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"


def read(root: Path, *lines: str, constraints: str = "") -> list[str]:
    if constraints:
        (root / "c.txt").write_text(constraints)
    problems: list[str] = []
    reader = reqs.Reader(root, root, problems)
    reader.read_lines(list(enumerate(lines, start=1)), "requirements.txt", root)
    reader.finish("requirements.txt")
    return problems


def test_no_hash_anywhere_is_not_hash_mode(tmp_path):
    assert read(tmp_path, "six", "click>=8") == []


def test_a_fully_hashed_file_passes(tmp_path):
    assert read(tmp_path, SIX, "click==8.5.1 --hash=sha256:" + "a" * 64) == []


def test_one_hash_makes_every_other_requirement_need_one_naming_them(tmp_path):
    (problem,) = read(tmp_path, SIX, "click==8.5.1", "idna==3.21")
    assert problem.startswith(f"requirements.txt: {MISSING_HEAD} click==8.5.1, idna==3.21;")
    assert "six" not in problem.partition(";")[0]
    assert "uv pip compile --generate-hashes" in problem


def test_an_unpinned_requirement_is_named_both_unpinned_and_unhashed(tmp_path):
    problems = read(tmp_path, SIX, "click>=8")
    assert any(UNPINNED_HEAD in p and "click>=8" in p for p in problems)
    assert any(MISSING_HEAD in p and "click>=8" in p for p in problems)


def test_an_unpinned_requirement_with_a_hash_is_still_refused(tmp_path):
    (problem,) = read(tmp_path, "six>=1 --hash=sha256:" + "b" * 64)
    assert UNPINNED_HEAD in problem and "six>=1" in problem


def test_require_hashes_alone_turns_the_mode_on(tmp_path):
    (problem,) = read(tmp_path, "--require-hashes", "six==1.16.0")
    assert MISSING_HEAD in problem and "six==1.16.0" in problem


def test_no_require_hashes_turns_it_off_as_in_pip(tmp_path):
    assert read(tmp_path, "--no-require-hashes", SIX, "click") == []


def test_a_constraint_with_a_hash_turns_it_on_and_covers_its_name(tmp_path):
    hashed = "click==8.5.1 --hash=sha256:" + "c" * 64 + "\n"
    assert read(tmp_path, "-c c.txt", "click==8.5.1", constraints=hashed) == []
    (problem,) = read(tmp_path, "-c c.txt", "click==8.5.1", "idna==3.21", constraints=hashed)
    assert MISSING_HEAD in problem and "idna==3.21" in problem and "click" not in problem


def test_vcs_and_directories_cannot_be_hashed(tmp_path):
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "setup.py").write_text("")
    problems = read(tmp_path, SIX, "pkg @ git+https://host/o/r@abc", "./vendor")
    assert any("version control" in p and "pkg @ git+https://host/o/r@abc" in p for p in problems)
    assert any("point to directories: vendor;" in p for p in problems)


def test_a_shipped_wheel_file_needs_a_hash_but_no_pin(tmp_path):
    (tmp_path / "x-1.0-py3-none-any.whl").write_bytes(b"wheel")
    (problem,) = read(tmp_path, SIX, "./x-1.0-py3-none-any.whl")
    assert f"{MISSING_HEAD} x-1.0-py3-none-any.whl;" in problem and UNPINNED_HEAD not in problem


def pin(name: str) -> Pin:
    return Pin(name, "1.0", f"http://i/{name}.whl", "d" * 64, 1, True)


def test_the_hashed_sets_are_found_and_their_unhashed_distributions_named():
    def plan(*lines: str) -> InstallPlan:
        sets = (RequirementSet("requirements.txt", lines), RequirementSet("mlflow.txt", ("x",)))
        return InstallPlan(kind="pip", installer="venv", base_image="python:3.11",
                           requirement_sets=sets)  # fmt: skip

    assert [s.name for s in hash_mode_sets(plan(SIX))] == ["requirements.txt"]
    assert hash_mode_sets(plan("six")) == []
    assert unhashed([pin("six"), pin("idna")], {"six": {"d" * 64}}) == ["idna 1.0"]


@pytest.fixture
def logged_auth_index(tmp_path):
    """The test wheelhouse behind pypiserver with htpasswd, with gunicorn's access log on."""
    require_tools("htpasswd")
    service = services.start_logged_index(wheelhouse(), tmp_path / "index", "pa55")
    yield service
    service.stop()


@pytest.mark.e2e
def test_a_partly_hashed_file_fails_inspect_and_build_before_any_download(
    registry, logged_auth_index, tmp_path
):
    """A hashed requirement that is not pinned with `==` (pip: HashUnpinned): on main, inspect
    passed it and build went on to the registry and the index (pip refused it only as it
    downloaded); now both stop at the file, naming it and the unhashed one."""
    codeset = tmp_path / "partly-hashed"
    shutil.copytree(CASES / "requirements-hashed", codeset)
    with (codeset / "requirements.txt").open("a") as handle:
        handle.write("click==8.5.1\nidna>=3 --hash=sha256:" + "e" * 64 + "\n")
    url = logged_auth_index.extra["url"].replace("http://", "http://alice:pa55@")
    inspected = subprocess.run(
        [sys.executable, "-m", "mlflow_steps", "inspect", str(codeset), "--pip-index-url", url],
        capture_output=True, text=True,
    )  # fmt: skip
    assert inspected.returncode != 0
    assert MISSING_HEAD in inspected.stderr and "click==8.5.1;" in inspected.stderr
    assert f"{UNPINNED_HEAD} idna>=3;" in inspected.stderr
    since = len(registry.requests_seen())
    out = tmp_path / "image.txt"
    argv = local_build_argv(codeset, registry.host, base=f"{registry.host}/base/python:3.11",
                            index_url=url, repository="hash-mode/partial", output=out)  # fmt: skip
    built = subprocess.run([*argv, "--layering=single"], capture_output=True, text=True,
                           env=BUILDAH_ENV)  # fmt: skip
    assert built.returncode != 0
    assert MISSING_HEAD in built.stderr and "click==8.5.1" in built.stderr
    assert "pa55" not in built.stderr + built.stdout
    assert registry.requests_seen()[since:] == []  # no base looked up, nothing pushed
    assert services.index_requests(logged_auth_index) == []  # the index was never asked
    assert not out.exists()

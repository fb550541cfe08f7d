"""The build-time shared-library check, run for real on this host: libraries compiled here with
gcc, one of which links a library that is then removed, as a wheel links libgomp.so.1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_steps.components.builder.planning.plan import recipe_file
from tests.support.require import require_tools


def compile_library(path: Path, source: str, *link: str) -> None:
    src = path.with_suffix(".c")
    src.write_text(source)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(path), str(src), *link], check=True)


@pytest.fixture
def checker(tmp_path) -> Path:
    script = tmp_path / "check-libraries.py"
    script.write_bytes(recipe_file("check-libraries.py"))
    return script


@pytest.fixture
def site(tmp_path) -> Path:
    """site-packages/fastpkg/_core.so needs libgomp.so.1 (present) and libmissing.so.1 (gone)."""
    require_tools("gcc", "ldd")
    libs = tmp_path / "libs"
    libs.mkdir()
    compile_library(
        libs / "libmissing.so.1", "int missing(void) { return 1; }", "-Wl,-soname,libmissing.so.1"
    )
    package = tmp_path / "site-packages" / "fastpkg"
    package.mkdir(parents=True)
    compile_library(
        package / "_core.so",
        "int missing(void); int core(void) { return missing(); }",
        f"-L{libs}", "-l:libmissing.so.1", "-lgomp",
    )  # fmt: skip
    return package.parent


def run(checker: Path, *folders: Path) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(checker), *map(str, folders)]
    return subprocess.run(argv, capture_output=True, text=True)


def test_a_library_nothing_provides_fails_with_the_module_and_the_fix(checker, site):
    done = run(checker, site)
    assert done.returncode == 3
    assert "libmissing.so.1, needed by fastpkg/_core.so (package fastpkg)" in done.stderr
    assert "add the Debian package that provides it to system_packages" in done.stderr
    assert "libgomp" not in done.stderr  # resolved on this host
    assert "nothing is pushed" in done.stderr


def test_known_libraries_name_their_debian_package(checker, site, tmp_path):
    """A library named as Debian's libgeos-c1v5 ships it (not installed on this host)."""
    libs = tmp_path / "libs"
    soname = "libgeos_c.so.1"
    compile_library(libs / soname, "int geos(void) { return 2; }", f"-Wl,-soname,{soname}")
    (site / "fastpkg" / "_core.so").unlink()
    compile_library(
        site / "fastpkg" / "_geo.so",
        "int geos(void); int f(void) { return geos(); }",
        f"-L{libs}", f"-l:{soname}",
    )  # fmt: skip
    done = run(checker, site)
    assert done.returncode == 3
    needed = "libgeos_c.so.1, needed by fastpkg/_geo.so (package fastpkg): "
    assert needed + 'add system_packages="libgeos-c1v5"' in done.stderr


def test_a_library_the_environment_ships_itself_passes(checker, site, tmp_path):
    """Packages that load their own libraries first (e.g. torch and the nvidia-* wheels)."""
    (site / "fastpkg" / "libmissing.so.1").write_bytes(
        (tmp_path / "libs" / "libmissing.so.1").read_bytes()
    )
    done = run(checker, site)
    assert done.returncode == 0, done.stderr


def test_an_environment_whose_libraries_resolve_passes(checker, tmp_path):
    require_tools("gcc", "ldd")
    package = tmp_path / "ok" / "okpkg"
    package.mkdir(parents=True)
    compile_library(package / "_ok.so", "int ok(void) { return 0; }", "-lgomp")
    assert run(checker, package.parent).returncode == 0

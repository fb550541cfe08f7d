"""compile-bytecode.py, the recipe's bytecode step, run for real with this host's Python on a
tree shaped like site-packages."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

from mlflow_steps.components.builder.planning.plan import recipe_file
from tests.support import images


def run_script(tmp_path: Path, *roots: Path | str) -> subprocess.CompletedProcess:
    script = tmp_path / "compile-bytecode.py"
    script.write_bytes(recipe_file("compile-bytecode.py"))
    return subprocess.run(
        [sys.executable, str(script), *map(str, roots)], capture_output=True, text=True
    )


def site_packages(tmp_path: Path) -> Path:
    site = tmp_path / "lib" / "site-packages"
    files = {
        "pkg/__init__.py": "VALUE = 1\n",
        "pkg/core.py": "def f():\n    return 2\n",
        "pkg/tests/test_core.py": "def test_f():\n    pass\n",
        "pkg/sub/test/helpers.py": "X = 1\n",
        "pkg/broken.py": "def f(:\n",
        "pkg/latin.py": "# -*- coding: latin-1 -*-\nNAME = 'caf\xe9'\n",
        "tests/__init__.py": "TOP = True\n",  # a top-level `tests` package: importable, compiled
        "module.py": "import pkg\n",
    }
    for name, text in files.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("latin-1"))
    return site


def compiled(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.pyc"))


def test_every_importable_file_gets_unchecked_hash_bytecode_and_tests_are_skipped(tmp_path):
    site = site_packages(tmp_path)
    done = run_script(tmp_path, site, site)  # a venv passes purelib and platlib: one folder
    assert done.returncode == 0, done.stderr
    assert "bytecode for 5 files (1 left as source)" in done.stderr and not done.stdout
    tag = sys.implementation.cache_tag
    assert compiled(site) == sorted(
        [
            f"pkg/__pycache__/__init__.{tag}.pyc",
            f"pkg/__pycache__/core.{tag}.pyc",
            f"pkg/__pycache__/latin.{tag}.pyc",
            f"tests/__pycache__/__init__.{tag}.pyc",
            f"__pycache__/module.{tag}.pyc",
        ]
    )
    pyc = (site / "pkg" / "__pycache__" / f"core.{tag}.pyc").read_bytes()
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 1  # hash-based, unchecked
    assert pyc[8:16] == importlib.util.source_hash((site / "pkg" / "core.py").read_bytes())
    assert (site / "pkg" / "tests" / "test_core.py").exists()  # kept, not compiled


def test_python_imports_the_bytecode_without_reading_the_source(tmp_path):
    site = site_packages(tmp_path)
    assert run_script(tmp_path, site).returncode == 0
    (site / "pkg" / "__init__.py").write_text("VALUE = 'source read'\n")  # same path, new text
    done = subprocess.run(
        [sys.executable, "-c", "import pkg, pkg.latin; print(pkg.VALUE, pkg.latin.NAME)"],
        capture_output=True,
        text=True,
        cwd=site,
        env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONSAFEPATH": ""},
    )
    assert done.stdout.split() == ["1", "caf\xe9"], done.stderr  # the .pyc, unchecked


def test_bytecode_is_reproducible(tmp_path):
    site = site_packages(tmp_path)
    assert run_script(tmp_path, site).returncode == 0
    first = {p: p.read_bytes() for p in site.rglob("*.pyc")}
    for pyc in first:
        pyc.unlink()
    assert run_script(tmp_path, site).returncode == 0
    assert {p: p.read_bytes() for p in site.rglob("*.pyc")} == first


def test_a_files_bytecode_does_not_depend_on_the_file_compiled_before_it(tmp_path):
    # scikit-learn's pipeline.py compiled while the previous file of the worker's batch was
    # alive, its string `drop` interned, merged its two equal frozenset constants
    # differently: one distribution's layer differed with its neighbours in the batch.
    wheels = sorted(images.wheelhouse().glob("scikit_learn-*.whl"))
    assert wheels, "the test wheelhouse has scikit-learn (WHEELHOUSE_REQUIREMENTS)"
    with zipfile.ZipFile(wheels[0]) as wheel:
        source = wheel.read("sklearn/pipeline.py")
    alone, beside = tmp_path / "alone", tmp_path / "beside"  # roots of two image trees
    for root in (alone, beside):
        (root / "site" / "sklearn").mkdir(parents=True)
        (root / "site" / "sklearn" / "pipeline.py").write_bytes(source)
    (beside / "site" / "sklearn" / "pipelina.py").write_text("drop = 'drop'\n")  # just before
    for root in (alone, beside):  # the same image paths, so the same code names
        done = run_script(tmp_path, "--root", root, "/site")
        assert done.returncode == 0, done.stderr
    pyc = f"site/sklearn/__pycache__/pipeline.{sys.implementation.cache_tag}.pyc"
    assert (alone / pyc).read_bytes() == (beside / pyc).read_bytes()


def test_files_streamed_on_stdin_get_what_the_folder_search_gives_them(tmp_path):
    """--stdin (the engine-less build streams each wheel's files as it is unpacked): the same
    files compiled, to the same bytes, as when the folder is searched; the paths the search
    would skip (tests below a package, other suffixes, outside the folder) are skipped."""
    walked, streamed = tmp_path / "walked", tmp_path / "streamed"  # two image roots
    for root in (walked, streamed):
        site_packages(root)
    assert run_script(tmp_path, "--root", walked, "/lib/site-packages").returncode == 0
    site = streamed / "lib" / "site-packages"
    paths = sorted("/" + str(p.relative_to(streamed)) for p in site.rglob("*.py"))
    other = ["/lib/site-packages/pkg/data.txt", "/lib/other.py", paths[0]]  # and one twice
    first, second = paths[:3], paths[3:] + other
    feed = b"".join(p.encode() + b"\0" for p in first) + b"\0"
    feed += b"".join(p.encode() + b"\0" for p in second) + b"\0"
    (streamed / "lib" / "other.py").write_text("X = 1\n")
    script = tmp_path / "compile-bytecode.py"
    done = subprocess.run(
        [sys.executable, str(script), "--root", str(streamed), "--stdin", "/lib/site-packages"],
        input=feed,
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr
    assert b"bytecode for 5 files (1 left as source)" in done.stderr
    assert compiled(site) == compiled(walked / "lib" / "site-packages")
    assert not list((streamed / "lib").glob("__pycache__"))
    for pyc in site.rglob("*.pyc"):
        assert pyc.read_bytes() == (walked / pyc.relative_to(streamed)).read_bytes()

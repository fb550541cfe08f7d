"""The missing-library check on a staged venv, without running anything: real ELF files (the
lightgbm wheel's library, which needs libgomp.so.1, and this interpreter's own C library)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlflow_steps.components.builder.backends.layered.libraries import (
    elf_files,
    missing_libraries,
    problems,
)
from tests.support.require import require

BASE = frozenset(
    [
        "libc.so.6",
        "libm.so.6",
        "libstdc++.so.6",
        "libgcc_s.so.1",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
    ]
)
SITE = "lib/python3.11/site-packages"


@pytest.fixture
def lightgbm_library() -> Path:
    lightgbm = pytest.importorskip("lightgbm")
    found = sorted(Path(lightgbm.__file__).parent.rglob("lib_lightgbm.so"))
    require(bool(found), "needs lightgbm's lib_lightgbm.so")
    return found[0]


def stage(venv: Path, library: Path) -> Path:
    target = venv / SITE / "lightgbm" / "lib" / library.name
    target.parent.mkdir(parents=True)
    shutil.copy2(library, target)
    (venv / SITE / "lightgbm" / "__init__.py").write_text("")
    return target


def test_a_library_the_base_lacks_is_named_with_its_package(tmp_path, lightgbm_library):
    stage(tmp_path, lightgbm_library)
    assert len(elf_files(tmp_path)) == 1  # the .py beside it is not ELF
    missing = missing_libraries(tmp_path, BASE)
    assert list(missing) == ["libgomp.so.1"]
    assert missing["libgomp.so.1"] == [f"{SITE}/lightgbm/lib/lib_lightgbm.so"]
    (line,) = problems(missing)
    assert line.startswith("libgomp.so.1 (Debian package libgomp1), needed by ")


def test_the_base_or_the_venv_itself_may_provide_it(tmp_path, lightgbm_library):
    stage(tmp_path, lightgbm_library)
    assert missing_libraries(tmp_path, BASE | {"libgomp.so.1"}) == {}
    # auditwheel's layout: the wheel's own copy in <name>.libs beside the package
    bundled = tmp_path / SITE / "lightgbm.libs" / "libgomp.so.1"
    bundled.parent.mkdir()
    bundled.write_bytes(b"\x7fELF-not-parsed")
    assert missing_libraries(tmp_path, BASE) == {}

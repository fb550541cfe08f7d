"""Splitting an installed venv per distribution: RECORD's files, the whole .dist-info folder and
the bytecode of listed sources go to their distribution; the rest is the skeleton, uv's `.lock`
excepted."""

from __future__ import annotations

import os

import pytest

from mlflow_steps.components.builder.backends.layered.installed import split
from mlflow_steps.components.problems import StepError

VENV = "/opt/env"
SITE = f"{VENV}/lib/python3.11/site-packages"


def dist(root, name, version, files, record_extra=()):
    site = root / SITE.lstrip("/")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "extra.txt").write_text("not in RECORD\n")
    rows = []
    for path, data in files.items():
        target = site / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(data)
        rows.append(f"{path},,")
    rows += [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,", *record_extra]
    (info / "RECORD").write_text("\n".join(rows) + "\n")


def test_each_distribution_gets_its_files_dist_info_and_bytecode(tmp_path):
    root = tmp_path
    dist(root, "Foo_Bar", "1.0", {"foo/__init__.py": "", "foo/data.json": "{}"},
         ["../../../bin/foo,,"])  # fmt: skip
    dist(root, "six", "1.17.0", {"six.py": "X = 1\n"})
    bin_dir = root / VENV.lstrip("/") / "bin"
    bin_dir.mkdir()
    (bin_dir / "foo").write_text("#!/opt/env/bin/python\n")
    os.symlink("/usr/bin/python3", bin_dir / "python")
    (root / SITE.lstrip("/") / "foo" / "__pycache__").mkdir()
    (root / SITE.lstrip("/") / "foo" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"")
    (root / SITE.lstrip("/") / "__pycache__").mkdir()
    (root / SITE.lstrip("/") / "__pycache__" / "six.cpython-311.pyc").write_bytes(b"")
    (root / VENV.lstrip("/") / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (root / VENV.lstrip("/") / ".lock").write_text("")

    claimed, skeleton = split(root, VENV, SITE, "cpython-311")

    assert sorted(claimed) == ["foo-bar", "six"]
    assert claimed["foo-bar"] == sorted([
        f"{SITE}/foo/__init__.py",
        f"{SITE}/foo/__pycache__/__init__.cpython-311.pyc",
        f"{SITE}/foo/data.json",
        f"{SITE}/Foo_Bar-1.0.dist-info/METADATA",
        f"{SITE}/Foo_Bar-1.0.dist-info/RECORD",
        f"{SITE}/Foo_Bar-1.0.dist-info/extra.txt",
        f"{VENV}/bin/foo",
    ])  # fmt: skip
    assert claimed["six"] == sorted([
        f"{SITE}/six.py",
        f"{SITE}/__pycache__/six.cpython-311.pyc",
        f"{SITE}/six-1.17.0.dist-info/METADATA",
        f"{SITE}/six-1.17.0.dist-info/RECORD",
        f"{SITE}/six-1.17.0.dist-info/extra.txt",
    ])  # fmt: skip
    assert skeleton == [f"{VENV}/bin/python", f"{VENV}/pyvenv.cfg"]


def test_a_record_that_leaves_the_venv_is_refused(tmp_path):
    dist(tmp_path, "evil", "1.0", {"evil.py": ""}, ["../../../../../etc/passwd,,"])
    with pytest.raises(StepError, match="outside the venv"):
        split(tmp_path, VENV, SITE, "cpython-311")

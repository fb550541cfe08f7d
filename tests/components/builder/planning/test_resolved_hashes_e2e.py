"""`resolve` (and `platforms`, which always resolves) replace a hashed requirements file by the
builder's own lock (a file hashed on every line is a lock already; one whose hashes are in its
constraints file is not): the user's hashes must hold over that lock. A real pypiserver serves one
wheel; a pin with its true sha256 resolves, a pin with one hex digit flipped is refused before
any tag is computed (found by this round's attack review: the lock's own hashes replaced the
user's, so the wrong pin passed)."""

from __future__ import annotations

import hashlib

import pytest

from mlflow_steps.components.builder.build import plan
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.builder.planning.resolution import resolved_plan
from mlflow_steps.components.problems import StepError
from tests.support import packages, services


def test_a_resolution_keeps_the_users_hash_pins(tmp_path):
    wheels = tmp_path / "wheels"
    wheel = packages.wheel(wheels, "stepsdemo-one", "1.0")
    true = hashlib.sha256(wheel.read_bytes()).hexdigest()
    flipped = ("0" if true[0] != "0" else "1") + true[1:]
    index = services.start_index(wheels, tmp_path / "index")
    try:
        options = BuildOptions(pip_index_url=index.extra["url"], mlflow_requirement="")
        for name, digest in (("good", true), ("bad", flipped)):
            codeset = tmp_path / name
            codeset.mkdir()
            (codeset / "train.py").write_text("import stepsdemo_one\n")
            # Hashed in a constraints file: the set is not a lock, so `resolve` resolves it.
            (codeset / "requirements.txt").write_text("stepsdemo-one==1.0\n-c constraints.txt\n")
            (codeset / "constraints.txt").write_text(f"stepsdemo-one==1.0 --hash=sha256:{digest}\n")
            install = plan(codeset, options).install
            if name == "good":
                locked = resolved_plan(install, options.index().install_env(), "3.11")
                assert locked.lock is not None and true in locked.lock.decode()
                continue
            with pytest.raises(StepError, match=r"stepsdemo-one 1\.0: the index offers"):
                resolved_plan(install, options.index().install_env(), "3.11")
    finally:
        index.stop()

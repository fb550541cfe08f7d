"""`mlflow-steps run --image` mounts the codeset read-only (issue 23, item 11): run for real
with buildah, through the launcher, in an image whose `mlflow_steps_runtime` is a stand-in
that tries to change the codeset the way an entry point could (create, overwrite, delete)
and reports what happened in the step's output file. MLflow itself is not needed to show what
the mount allows; the stand-in runs exactly where and as the runtime step does."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest

from tests.support import images
from tests.support.images import BUILDAH_ENV

pytestmark = pytest.mark.e2e

STAND_IN = """\
import os, sys
results = []
for what, act in [
    ("create", lambda: open("/project/marker", "w").write("written")),
    ("overwrite", lambda: open("/project/MLproject", "a").write("# changed")),
    ("delete", lambda: os.remove("/project/train.py")),
    ("mkdir", lambda: os.mkdir("/project/mlruns")),
]:
    try:
        act()
        results.append(what + ":done")
    except OSError as exc:
        results.append(what + ":" + type(exc).__name__)
out = sys.argv[sys.argv.index("--output") + 1]
open(out, "w").write(" ".join(results))
"""


@pytest.fixture(scope="module")
def stand_in_image(registry, base_images):
    code = base64.b64encode(STAND_IN.encode()).decode()
    run = (
        'python -c "import base64, os, site; '
        "d = os.path.join(site.getsitepackages()[0], 'mlflow_steps_runtime'); "
        "os.makedirs(d); "
        f"open(os.path.join(d, '__main__.py'), 'wb').write(base64.b64decode('{code}'))\""
    )
    reference = f"{registry.host}/tests/read-only-stand-in:1"
    images.push_derived_image(base_images["python"], run, reference)
    yield reference
    images.remove_local_images(reference)


def test_the_entry_point_cannot_write_into_the_codeset(stand_in_image, tmp_path):
    codeset = tmp_path / "codeset"
    codeset.mkdir()
    (codeset / "MLproject").write_text("name: t\nentry_points:\n  main:\n    command: x\n")
    (codeset / "train.py").write_text("print('hi')\n")
    before = {p.name: p.read_bytes() for p in codeset.iterdir()}
    out = tmp_path / "url"
    env = {**os.environ, **BUILDAH_ENV, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    argv = [sys.executable, "-m", "mlflow_steps", "run", str(codeset), "--output", str(out)]
    argv += ["--image", stand_in_image, "--engine", "buildah", "--insecure"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = dict(item.split(":") for item in out.read_text().split())
    assert sorted(results) == ["create", "delete", "mkdir", "overwrite"]
    assert all(outcome != "done" for outcome in results.values()), results
    assert {p.name: p.read_bytes() for p in codeset.iterdir()} == before

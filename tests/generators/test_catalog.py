"""The committed catalog (pipelines/catalog) is exactly what the generator writes: regenerate
and fail on any difference (set MLFLOW_STEPS_REGENERATE=1 to rewrite it on purpose)."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from mlflow_steps.generators.catalog import ENGINES, GenerateOptions, generate

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "pipelines" / "catalog"


def differences(left: Path, right: Path) -> list[str]:
    found = []
    compare = filecmp.dircmp(left, right)
    found += [f"only committed: {n}" for n in compare.left_only]
    found += [f"only generated: {n}" for n in compare.right_only]
    found += [f"differs: {n}" for n in compare.diff_files]
    for sub in compare.common_dirs:
        found += differences(left / sub, right / sub)
    return found


def test_committed_catalog_matches_the_generator(tmp_path):
    generate(list(ENGINES), tmp_path, GenerateOptions())
    if os.environ.get("MLFLOW_STEPS_REGENERATE") == "1":
        shutil.rmtree(COMMITTED, ignore_errors=True)
        shutil.copytree(tmp_path, COMMITTED)
    assert differences(COMMITTED, tmp_path) == [], (
        "pipelines/catalog drifted from the generator; run "
        "`mlflow-steps generate --out pipelines/catalog` and commit"
    )


def test_generate_cli_writes_each_engine(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow_steps",
            "generate",
            "--engine",
            "tekton",
            "--out",
            str(tmp_path),
            "--version",
            "0.2",
            "--build-engine",
            "buildah",
            "--builder-image",
            "my.registry/builder@sha256:" + "1" * 64,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tekton"]
    task = yaml.safe_load(
        (
            tmp_path / "tekton/task/mlflow-builder-buildah/0.2/mlflow-builder-buildah.yaml"
        ).read_text()
    )
    assert task["spec"]["steps"][0]["image"] == "my.registry/builder@sha256:" + "1" * 64
    assert task["metadata"]["labels"]["app.kubernetes.io/version"] == "0.2"
    # Every variant's Task (3 files each), the runtime's, the Pipeline and its sample.
    assert len(done.stdout.split()) == 14

"""The YAML and the modules agree: for each engine, read the generated step definitions
(command, args, env, parameter wiring), substitute sample values the way the engine would, and
run the in-container modules on this machine with exactly that command line and environment:
the builder against a real local registry (its image already there: one lookup, no build), the
runtime in this machine's Python with MLflow (the `local` engine's way) and a SQLite store.
A renamed flag or a mistyped env var breaks these tests."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlflow_steps.components.builder.build import base_resolver, plan
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.generators import argo, fuseml, tekton
from mlflow_steps.generators.catalog import GenerateOptions, kfp_files
from tests.support import chains
from tests.support.oci import push_tiny_image

ROOT = Path(__file__).resolve().parents[2]
MLPROJECT = """\
name: wiring
entry_points:
  main:
    parameters:
      note: {type: string, default: none}
    command: "python log_model.py {note}"
"""
LOG_MODEL = """\
import sys, mlflow
mlflow.log_param("note", sys.argv[1])
mlflow.log_text("flavors: {}\\n", "model/MLmodel")
"""


@pytest.fixture
def codeset(tmp_path: Path) -> Path:
    root = tmp_path / "codeset"
    root.mkdir()
    (root / "MLproject").write_text(MLPROJECT)
    (root / "log_model.py").write_text(LOG_MODEL)
    (root / "requirements.txt").write_text("six==1.16.0\n")
    return root


@pytest.fixture
def base(registry) -> str:
    """A base image in the local registry (its tag resolves to a digest, as every build's)."""
    push_tiny_image(registry.host, "wiring/base", ["1"])
    return f"{registry.host}/wiring/base:1"


@pytest.fixture
def cached_image(registry, codeset, base) -> str:
    """The image the builder would build is already in the registry: expect this reference."""
    options = BuildOptions(registry=registry.host, pull_registry="", insecure=True, base_image=base)
    the_plan = plan(codeset, options, base_resolver(options))
    push_tiny_image(registry.host, options.repository, [the_plan.tag])
    return the_plan.pull_reference


def substitute(value: str, table: dict[str, str], pattern: str) -> str:
    def replace(match: re.Match) -> str:
        assert match.group(1) in table, f"unresolved reference {match.group(0)}"
        return table[match.group(1)]

    return re.sub(pattern, replace, value)


def run_step(argv: list[str], env: dict[str, str], cwd: Path, tmp_path: Path):
    """Run a step's command here: `mlflow-steps` is this package's CLI; `python -m
    mlflow_steps_runtime` finds the runtime module as it is laid out in the image."""
    runtime_parent = tmp_path / "runtime-parent"
    if not runtime_parent.exists():
        shutil.copytree(
            ROOT / "components" / "runtime",
            runtime_parent / "mlflow_steps_runtime",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    if argv[0] == "mlflow-steps":
        argv = [sys.executable, "-m", "mlflow_steps", *argv[1:]]
    elif argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FUSEML_", "MLFLOW_"))}
    full_env = {
        **base,
        # The caller's PYTHONPATH after it: a checkout's own package, not an installed one.
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(runtime_parent), os.environ.get("PYTHONPATH")])
        ),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        **env,
    }
    return subprocess.run(argv, env=full_env, cwd=cwd, capture_output=True, text=True)


def note_logged(tmp_path: Path) -> str:
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        return db.execute("select value from params where key = 'note'").fetchone()[0]


def check_model_url(path: Path) -> None:
    url = path.read_text()
    assert url.endswith("/model") or "/models/" in url, url
    local = url.removeprefix("file://")
    assert (Path(local) / "MLmodel").exists(), url


# --- Tekton -------------------------------------------------------------------------------


def tekton_run(task: dict, params: dict[str, str], workspaces: dict[str, str], tmp_path: Path):
    spec = task["spec"]
    table = {f"params.{p['name']}": p.get("default", "") for p in spec["params"]}
    table.update({f"params.{k}": v for k, v in params.items()})
    table.update({f"workspaces.{k}.path": v for k, v in workspaces.items()})
    results = {r["name"]: tmp_path / "results" / r["name"] for r in spec["results"]}
    table.update({f"results.{name}.path": str(path) for name, path in results.items()})
    (tmp_path / "results").mkdir(exist_ok=True)
    (step,) = spec["steps"]
    sub = lambda v: substitute(v, table, r"\$\(([^)]+)\)")  # noqa: E731
    argv = [sub(a) for a in step["command"] + step.get("args", [])]
    env = {e["name"]: sub(e["value"]) for e in step.get("env", []) if "value" in e}
    return run_step(argv, env, Path(sub(step["workingDir"])), tmp_path), results


def test_tekton_builder_task(registry, codeset, base, cached_image, tmp_path):
    task = tekton.builder_task(tekton.TektonOptions())
    done, results = tekton_run(
        task,
        {"REGISTRY": registry.host, "PULL_REGISTRY": "", "INSECURE": "true", "BASE_IMAGE": base},
        {"source": str(codeset), "dockerconfig": ""},
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert results["IMAGE_URL"].read_text() == cached_image
    assert results["IMAGE_DIGEST"].read_text().startswith("sha256:")


def task_run_results(task: dict, results: dict[str, Path]) -> list[dict]:
    """A TaskRun's status.results as Tekton records them from the files the step wrote: an
    object result's file holds JSON, a string result's its text."""
    recorded = []
    for declared in task["spec"]["results"]:
        path = results[declared["name"]]
        if path.exists():
            text = path.read_text()
            value = json.loads(text) if declared["type"] == "object" else text
            if declared["type"] == "object":
                assert set(value) == set(declared["properties"]), value  # every key, as Tekton asks
            recorded.append({"name": declared["name"], "type": declared["type"], "value": value})
    return recorded


def test_tekton_builder_results_read_as_tekton_chains_reads_them(
    registry, codeset, base, cached_image, tmp_path
):
    """The builder Task's results, from a real run of its step on a codeset in a git checkout,
    read with Chains' type-hint rules: the subject is the image's repository and manifest
    digest, and the codeset's remote and commit are an input."""
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for command in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "c"],
        ["remote", "add", "origin", "https://bob:tok3n@git.example.org/ml/wiring.git"],
    ):
        subprocess.run(["git", *command], cwd=codeset, env=env, check=True, capture_output=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=codeset,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    task = tekton.builder_task(tekton.TektonOptions())
    done, results = tekton_run(
        task,
        {"REGISTRY": registry.host, "PULL_REGISTRY": "", "INSECURE": "true", "BASE_IMAGE": base},
        {"source": str(codeset), "dockerconfig": ""},
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    task_run = {"kind": "TaskRun", "status": {"results": task_run_results(task, results)}}
    digest = results["IMAGE_DIGEST"].read_text()
    repository = cached_image.rsplit(":", 1)[0]
    assert chains.subjects(task_run["status"]["results"]) == [
        (repository, {"sha256": digest.removeprefix("sha256:")})
    ]
    assert chains.materials(task_run["status"]["results"]) == [
        ("git+https://git.example.org/ml/wiring.git", {"sha1": commit})
    ]
    assert "tok3n" not in json.dumps(task_run)


def test_chains_reading_skips_what_chains_skips():
    good = "sha256:" + "a" * 64
    assert chains.subjects([{"name": "IMAGE_URL", "value": "r:5000/a/b:t"}]) == []
    assert (
        chains.subjects(
            [
                {"name": "IMAGE_URL", "value": "r:5000/a/b:t"},
                {"name": "IMAGE_DIGEST", "value": "sha256:zz"},
            ]
        )
        == []
    )
    assert chains.subjects(
        [{"name": "X_IMAGE_URL", "value": "b:t"}, {"name": "X_IMAGE_DIGEST", "value": good}]
    ) == [("index.docker.io/library/b", {"sha256": "a" * 64})]
    empty = [{"name": "SOURCE_ARTIFACT_INPUTS", "value": {"uri": "", "digest": ""}}]
    assert chains.materials(empty) == []  # a codeset outside git: written, and skipped


def test_tekton_runtime_task(codeset, tmp_path):
    task = tekton.runtime_task(tekton.TektonOptions())
    done, results = tekton_run(
        task,
        {"IMAGE": "unused-here", "MLFLOW_ENTRYPOINT_ARGS": "note=from-tekton"},
        {"source": str(codeset)},
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    check_model_url(results["MODEL_URL"])
    assert note_logged(tmp_path) == "from-tekton"


# --- Argo ---------------------------------------------------------------------------------


def argo_run(template: dict, params: dict[str, str], codeset: Path, tmp_path: Path):
    table = {
        f"inputs.parameters.{p['name']}": p.get("default", "")
        for p in template["inputs"]["parameters"]
    }
    table.update({f"inputs.parameters.{k}": v for k, v in params.items()})
    container = template["container"]
    out_dir = tmp_path / "outputs"
    out_dir.mkdir(exist_ok=True)

    def sub(value: str) -> str:
        value = substitute(value, table, r"\{\{([^}]+)\}\}")
        value = value.replace(argo.OUTPUT_DIR, str(out_dir))
        return str(codeset) if value == template["inputs"]["artifacts"][0]["path"] else value

    argv = [sub(a) for a in container["command"] + container["args"]]
    env = {e["name"]: sub(e["value"]) for e in container["env"] if "value" in e}
    outputs = {
        p["name"]: Path(sub(p["valueFrom"]["path"])) for p in template["outputs"]["parameters"]
    }
    return run_step(argv, env, codeset, tmp_path), outputs


def argo_template(name: str) -> dict:
    templates = argo.files()["mlflow-steps-workflow-template.yaml"]["spec"]["templates"]
    return next(t for t in templates if t["name"] == name)


def test_argo_builder_template(registry, codeset, base, cached_image, tmp_path):
    done, outputs = argo_run(
        argo_template("mlflow-builder"),
        {"registry": registry.host, "pull-registry": "", "insecure": "true", "base-image": base},
        codeset,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert outputs["image"].read_text() == cached_image


def test_argo_runtime_template(codeset, tmp_path):
    done, outputs = argo_run(
        argo_template("mlflow-runtime"),
        {"image": "unused", "mlflow-entrypoint-args": "note=from-argo"},
        codeset,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    check_model_url(outputs["model-url"])
    assert note_logged(tmp_path) == "from-argo"


# --- Kubeflow Pipelines ---------------------------------------------------------------------


def kfp_run(component: str, params: dict[str, str], codeset: Path, tmp_path: Path):
    pipeline = next(yaml.safe_load_all(kfp_files(GenerateOptions())["mlflow-build-and-train.yaml"]))
    container = pipeline["deploymentSpec"]["executors"][f"exec-{component}"]["container"]
    interface = pipeline["components"][f"comp-{component}"]
    table = {
        f"$.inputs.parameters['{name}']": str(p.get("defaultValue", ""))
        for name, p in interface["inputDefinitions"]["parameters"].items()
    }
    table.update({f"$.inputs.parameters['{k}']": v for k, v in params.items()})
    table["$.inputs.artifacts['codeset'].path"] = str(codeset)
    outputs = {}
    for name in interface["outputDefinitions"]["parameters"]:
        outputs[name] = tmp_path / "kfp-outputs" / name
        table[f"$.outputs.parameters['{name}'].output_file"] = str(outputs[name])
    (tmp_path / "kfp-outputs").mkdir(exist_ok=True)
    argv = [
        substitute(a, table, r"\{\{(\$[^}]+)\}\}") for a in container["command"] + container["args"]
    ]
    return run_step(argv, {}, codeset, tmp_path), outputs


def test_kfp_builder_component(registry, codeset, base, cached_image, tmp_path):
    done, outputs = kfp_run(
        "mlflow-builder",
        {"registry": registry.host, "pull_registry": "", "insecure": "true", "base_image": base},
        codeset,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert outputs["image"].read_text() == cached_image


def test_kfp_runtime_component(codeset, tmp_path):
    done, outputs = kfp_run(
        "mlflow-runtime", {"mlflow_entrypoint_args": "note=from-kfp"}, codeset, tmp_path
    )
    assert done.returncode == 0, done.stderr
    check_model_url(outputs["model_url"])
    assert note_logged(tmp_path) == "from-kfp"


# --- FuseML: the images' entrypoints, FUSEML_* inputs, /tekton/results/$TASK_RESULT ----------


def entrypoint(dockerfile_text: str) -> list[str]:
    line = next(x for x in dockerfile_text.splitlines() if x.startswith("ENTRYPOINT"))
    return json.loads(line.removeprefix("ENTRYPOINT "))


def test_fuseml_builder_step(registry, codeset, base, cached_image, tmp_path):
    workflow = fuseml.files()["train_mlflow_model.yaml"]
    builder = workflow["steps"][0]
    assert builder["inputs"][0]["codeset"]["path"] == "/project"
    argv = entrypoint((ROOT / "components/builder/images/Dockerfile.kaniko").read_text())
    argv = [str(codeset) if a == "/project" else a for a in argv]
    argv[0] = "mlflow-steps"
    env = {
        "FUSEML_REGISTRY": registry.host,
        "FUSEML_PULL_REGISTRY": "",
        "FUSEML_INSECURE": "true",
        "FUSEML_BASE_IMAGE": base,
        "TASK_RESULT": builder["outputs"][0]["name"],
        "MLFLOW_STEPS_RESULTS_DIR": str(tmp_path / "results"),
    }
    done = run_step(argv, env, codeset, tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "results" / "image").read_text() == cached_image


def test_fuseml_trainer_step(codeset, tmp_path):
    from mlflow_steps.components.builder.backends.recipe import render

    env_kind = plan(codeset, BuildOptions()).codeset.environment
    argv = entrypoint(render(env_kind.install_plan(BuildOptions())).dockerfile)  # the image's
    env = {
        "FUSEML_MLFLOW_ENTRYPOINT_ARGS": "note=from-fuseml",
        "TASK_RESULT": "model-url",
        "MLFLOW_STEPS_RESULTS_DIR": str(tmp_path / "results"),
    }
    done = run_step(argv, env, codeset, tmp_path)  # FuseML: working directory /project
    assert done.returncode == 0, done.stderr
    check_model_url(tmp_path / "results" / "model-url")
    assert note_logged(tmp_path) == "from-fuseml"

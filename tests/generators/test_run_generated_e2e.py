"""The generated objects, run as the engines run them (tests/support/kubelet.py: buildah in place
of a kubelet; no Kubernetes API server runs here): the Tekton Tasks, then the Pipeline's tasks
chained through results; the Argo templates chained through output parameters; both FuseML
workflows. The builder step runs in the buildah builder image that `mlflow-steps images` built
on the Debian base, privileged, with a nested buildah (vfs) that builds and pushes the
environment image; the runtime step runs in that image against the real tracking server."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from mlflow_steps.components.builder.planning.indexes import NETRC_ENV
from mlflow_steps.generators import catalog
from tests.conftest import INDEX_USERS
from tests.support import kubelet
from tests.support.oci import pushed_image, registry_digest

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SECRET = "mlflow-credentials"
INDEX_SECRET = "index-credentials"  # the builder's default INDEX_SECRET / index-secret
NETRC = f"machine 127.0.0.1 login alice password {INDEX_USERS['alice']}\n"


@pytest.fixture(scope="module")
def generated(step_builder_image, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    # The buildah variant (the builder image built here); the catalog's default, the
    # unprivileged builder, needs the engine-less build (`--engine none`).
    options = catalog.GenerateOptions(builder_image=step_builder_image, build_engine="buildah")
    catalog.generate(["tekton", "argo", "fuseml"], out, options)
    return out


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture
def codeset(tmp_path) -> Path:
    root = tmp_path / "codeset"
    shutil.copytree(EXAMPLES / "sklearn-pip", root, ignore=shutil.ignore_patterns("mlruns"))
    return root


@pytest.fixture
def monorepo(tmp_path) -> Path:
    """A workspace whose codeset is two folders down (`repo#projects/wine`), with a parameter
    named like the runtime step's input `verbose` (int, default 1): the step's VERBOSE
    (`false`) must never fill it."""
    root = tmp_path / "repo"
    codeset = root / "projects" / "wine"
    shutil.copytree(EXAMPLES / "sklearn-pip", codeset, ignore=shutil.ignore_patterns("mlruns"))
    mlproject = codeset / "MLproject"
    mlproject.write_text(
        mlproject.read_text().replace(
            "      max_iter: {type: int, default: 1000}\n",
            "      max_iter: {type: int, default: 1000}\n      verbose: {type: int, default: 1}\n",
        )
    )
    assert "verbose: {type: int" in mlproject.read_text()
    (root / "README.md").write_text("several MLflow projects\n")
    return root


@pytest.fixture
def secrets(mlflow_env) -> dict[str, dict[str, str]]:
    """The Secret the runtime's envFrom names, as `kubectl create secret` would hold it."""
    return {SECRET: dict(mlflow_env)}


def builder_inputs(registry, package_index, base_images, repository: str) -> dict[str, str]:
    """snake_case builder inputs for this machine: the local registry, index and base; vfs."""
    return {
        "registry": registry.host,
        "pull_registry": "",
        "repository": repository,
        "insecure": "true",
        "base_image": base_images["debian"],
        "pip_index_url": package_index.extra["url"],
        "storage_driver": "vfs",
        # The runtime step pulls the image into this machine's vfs store, where a per-package
        # image costs a full tree copy per layer; the monorepo run keeps the default.
        "layering": "single",
    }


def manifest_puts(registry, repository: str) -> int:
    time.sleep(0.2)  # the registry writes its access log after answering
    return sum(r.startswith(f"PUT /v2/{repository}/manifests/") for r in registry.requests_seen())


def assert_model_loads(url: str) -> None:
    model = mlflow.pyfunc.load_model(url)
    assert model.predict(np.ones((2, 4))).shape == (2,)


def print_timings(log: list[kubelet.StepRun]) -> None:
    for step in log:
        print(f"step {step.name}: {step.seconds:.1f} s")


def test_tekton_tasks_build_then_train_a_codeset_two_folders_down(
    generated, monorepo, registry, auth_index, base_images, secrets, tmp_path
):
    """The workspace is a repository whose MLproject is at projects/wine (CONTEXT): the
    builder reads it there, the runtime runs it there. Through an index that requires
    credentials: they come from the Secret the builder Task names (INDEX_SECRET), and nothing
    of them reaches the pushed image."""
    codeset = monorepo
    tasks = generated / "tekton" / "task"
    builder = load(tasks / "mlflow-builder-buildah/0.1/mlflow-builder-buildah.yaml")
    runtime = load(tasks / "mlflow-runtime/0.1/mlflow-runtime.yaml")
    repository = "tekton/trainer"
    inputs = builder_inputs(registry, auth_index, base_images, repository)
    params = {name.upper(): value for name, value in inputs.items()}
    params["CONTEXT"] = "projects/wine"
    del params["LAYERING"]  # the Task's default, per-package, inside the builder image
    index_secret = {INDEX_SECRET: {"netrc": NETRC}}
    log: list[kubelet.StepRun] = []

    first = kubelet.run_task(
        builder, params, {"source": codeset}, index_secret, tmp_path / "b1", log
    )
    assert "not in the registry: building" in log[-1].output
    image, digest = first["IMAGE_URL"], first["IMAGE_DIGEST"]
    name, _, tag = image.rpartition(":")
    assert name == f"{registry.host}/{repository}"
    assert tag and digest == registry_digest(image)
    for name, data in pushed_image(image).items():
        assert INDEX_USERS["alice"].encode() not in data, name
    assert INDEX_USERS["alice"] not in log[-1].output
    pushes = manifest_puts(registry, repository)

    again = kubelet.run_task(
        builder, params, {"source": codeset}, index_secret, tmp_path / "b2", log
    )
    assert again == first and "nothing to build" in log[-1].output
    assert manifest_puts(registry, repository) == pushes  # the second run pushed nothing

    trained = kubelet.run_task(
        runtime,
        {
            "IMAGE": image,
            "MLFLOW_ENTRYPOINT_ARGS": "alpha=0.3",
            "MLFLOW_SECRET": SECRET,
            "CONTEXT": "projects/wine",
            "MLFLOW_EXPERIMENT": "tekton-monorepo",
        },
        {"source": codeset},
        secrets,
        tmp_path / "t",
        log,
    )
    assert_model_loads(trained["MODEL_URL"])
    runs = mlflow.search_runs(
        [mlflow.get_experiment_by_name("tekton-monorepo").experiment_id], output_format="list"
    )
    assert len(runs) == 1 and runs[0].data.params["alpha"] == "0.3"
    print_timings(log)


def test_tekton_pipeline_chains_build_into_train(
    generated, codeset, registry, package_index, base_images, secrets, tmp_path
):
    root = generated / "tekton"
    pipeline = load(root / "pipeline/mlflow-build-and-train/0.1/mlflow-build-and-train.yaml")
    tasks = {
        name: load(root / f"task/{name}/0.1/{name}.yaml")
        for name in ("mlflow-builder-buildah", "mlflow-runtime")
    }
    inputs = builder_inputs(registry, package_index, base_images, "pipeline/trainer")
    params = {name.upper(): value for name, value in inputs.items()}
    params.update(MLFLOW_ENTRYPOINT_ARGS="alpha=0.2", MLFLOW_EXPERIMENT="tekton-pipeline")
    log: list[kubelet.StepRun] = []
    results = kubelet.run_pipeline(
        pipeline, tasks, params, {"source": codeset}, secrets, tmp_path, log
    )
    assert [s.name for s in log] == ["mlflow-builder-buildah/build", "mlflow-runtime/run"]
    assert results["IMAGE_URL"].startswith(f"{registry.host}/pipeline/trainer:")
    assert_model_loads(results["MODEL_URL"])
    runs = mlflow.search_runs(
        [mlflow.get_experiment_by_name("tekton-pipeline").experiment_id], output_format="list"
    )
    assert len(runs) == 1 and runs[0].data.params["alpha"] == "0.2"
    print_timings(log)


def test_argo_templates_chain_through_output_parameters(
    generated, codeset, registry, package_index, base_images, secrets, tmp_path
):
    root = generated / "argo"
    template = load(root / "mlflow-steps-cluster-workflow-template.yaml")
    templates = {t["name"]: t for t in template["spec"]["templates"]}
    workflow = load(root / "examples/mlflow-build-and-train-workflow.yaml")
    inputs = builder_inputs(registry, package_index, base_images, "argo/trainer")
    parameters = {name.replace("_", "-"): value for name, value in inputs.items()}
    parameters.update({"mlflow-experiment": "argo-dag", "mlflow-secret": SECRET})
    log: list[kubelet.StepRun] = []
    outputs = kubelet.run_dag(
        workflow, templates, parameters, {"codeset": codeset}, secrets, tmp_path, log
    )
    image = outputs["build"]["image"]
    assert image.startswith(f"{registry.host}/argo/trainer:")
    assert outputs["build"]["digest"] == registry_digest(image)
    assert_model_loads(outputs["train"]["model-url"])
    print_timings(log)


def test_fuseml_workflows(
    generated, codeset, registry, auth_index, base_images, mlflow_env, tmp_path
):
    """The builder takes the index credentials from the `package-index` extension record, as
    the trainer takes MLflow's from theirs."""
    root = generated / "fuseml"
    inputs = builder_inputs(registry, auth_index, base_images, "fuseml/trainer")
    step_inputs = {"builder": inputs}
    extensions = {
        "mlflow-tracking": {"MLFLOW_TRACKING_URI": mlflow_env["MLFLOW_TRACKING_URI"]},
        "mlflow-store": {k: v for k, v in mlflow_env.items() if k != "MLFLOW_TRACKING_URI"},
        "package-index": {NETRC_ENV: NETRC},
    }
    log: list[kubelet.StepRun] = []
    built = kubelet.run_fuseml(
        load(root / "build_mlflow_env.yaml"), codeset, step_inputs, extensions, tmp_path / "b", log
    )
    image = built["builder"]["mlflow-runtime-image"]
    assert image.startswith(f"{registry.host}/fuseml/trainer:")
    trained = kubelet.run_fuseml(
        load(root / "train_mlflow_model.yaml"),
        codeset,
        step_inputs,
        extensions,
        tmp_path / "t",
        log,
    )
    assert trained["builder"]["image"] == image
    assert_model_loads(trained["trainer"]["model-url"])
    print_timings(log)


def test_an_unresolved_reference_fails_the_run(tmp_path):
    task = {
        "metadata": {"name": "broken"},
        "spec": {
            "params": [],
            "steps": [{"name": "s", "image": "x", "args": ["$(params.MISSING)"]}],
        },
    }
    with pytest.raises(AssertionError, match=r"unresolved reference \$\(params.MISSING\)"):
        kubelet.run_task(task, {}, {}, {}, tmp_path, [])

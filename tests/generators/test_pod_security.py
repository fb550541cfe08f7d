"""Every generated builder and runtime pod against the Pod Security Standards' `restricted`
profile (tests/support/pss.py), per engine as it hands the pod its settings; the privileged
builder variants are the only exceptions, and they say so themselves. Then checkov's Argo and
Kubernetes checks on the committed catalog."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mlflow_steps.generators import argo, fuseml, tekton
from mlflow_steps.generators.catalog import GenerateOptions, kfp_files
from tests.support.pss import violations
from tests.support.require import require

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "pipelines" / "catalog"
RESTRICTED = {"mlflow-builder", "mlflow-runtime"}
PRIVILEGED = {"mlflow-builder-buildah": "privileged", "mlflow-builder-kaniko": "runAsUser 0"}


def check(name: str, found: list[str]) -> None:
    if name in RESTRICTED:
        assert found == [], f"{name}: {found}"
    else:  # a privileged variant: exactly what it declares
        assert any(PRIVILEGED[name] in line for line in found), (name, found)


def test_tekton_tasks_as_their_sample_runs_start_them():
    out = tekton.files(tekton.TektonOptions())
    names = set()
    for path, task in out.items():
        if not (path.endswith(".yaml") and task.get("kind") == "Task"):
            continue
        name = task["metadata"]["name"]
        names.add(name)
        run = out[path.rsplit("/", 1)[0] + f"/samples/{name}-run.yaml"]
        pod = run["spec"]["podTemplate"]
        assert pod["automountServiceAccountToken"] is False
        containers = [(s["name"], s.get("securityContext", {})) for s in task["spec"]["steps"]]
        containers += [
            (s["name"], s.get("securityContext", {})) for s in task["spec"].get("sidecars", [])
        ]
        check(
            name,
            violations(pod.get("securityContext", {}), containers, task["spec"].get("volumes", [])),
        )
    assert names == RESTRICTED | set(PRIVILEGED)


def test_tekton_pipeline_run_is_restricted_for_the_default_builder():
    out = tekton.files(tekton.TektonOptions())
    base = "pipeline/mlflow-build-and-train/0.1"
    pipeline = out[f"{base}/mlflow-build-and-train.yaml"]
    run = out[f"{base}/samples/mlflow-build-and-train-run.yaml"]
    pod = run["spec"]["taskRunTemplate"]["podTemplate"]
    assert pod["automountServiceAccountToken"] is False
    tasks = {
        o["metadata"]["name"]: o
        for o in out.values()
        if isinstance(o, dict) and o.get("kind") == "Task"
    }
    for pipeline_task in pipeline["spec"]["tasks"]:
        ref = pipeline_task["taskRef"].get("name")
        if ref is None:
            continue  # the hub's git-clone: its own Task
        steps = tasks[ref]["spec"]["steps"]
        found = violations(
            pod["securityContext"], [(s["name"], s["securityContext"]) for s in steps]
        )
        assert found == [], (ref, found)


def argo_pods(template_file: dict) -> dict[str, list[str]]:
    spec = template_file["spec"]
    found = {}
    for tpl in spec["templates"]:
        if "container" in tpl:
            containers = [("main", tpl["container"].get("securityContext", {}))]
        elif "containerSet" in tpl:  # the Kaniko variant: download, then main
            containers = [
                (c["name"], c.get("securityContext", {})) for c in tpl["containerSet"]["containers"]
            ]
        else:
            continue
        # A template's securityContext (the pod's) replaces the workflow's.
        pod = tpl.get("securityContext", spec.get("securityContext", {}))
        found[tpl["name"]] = violations(pod, containers, tpl.get("volumes", []))
        assert tpl["automountServiceAccountToken"] is False, tpl["name"]
        assert tpl["executor"]["serviceAccountName"], tpl["name"]
    return found


@pytest.mark.parametrize(
    "name", ["mlflow-steps-workflow-template.yaml", "mlflow-steps-cluster-workflow-template.yaml"]
)
def test_argo_templates(name):
    found = argo_pods(argo.files()[name])
    assert set(found) == RESTRICTED | set(PRIVILEGED)
    for template, lines in found.items():
        check(template, lines)


def test_hera_components():
    from hera.workflows import Workflow

    from mlflow_steps.pipelines.hera import mlflow_builder, mlflow_runtime

    workflow = Workflow(name="hera", templates=[mlflow_builder, mlflow_runtime]).to_dict()
    found = argo_pods(workflow)
    assert set(found) == RESTRICTED
    assert all(lines == [] for lines in found.values()), found


def test_kfp_pipeline():
    """A compiled KFP pipeline carries the user (kfp-kubernetes `set_security_context`); the KFP
    backend adds allowPrivilegeEscalation false, every capability dropped and RuntimeDefault
    seccomp to every task container (kfp-kubernetes' docs of set_security_context): those are
    taken as given here, the rest checked."""
    _pipeline, platform = yaml.safe_load_all(
        kfp_files(GenerateOptions())["mlflow-build-and-train.yaml"]
    )
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    backend = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for name in ("exec-mlflow-builder", "exec-mlflow-runtime"):
        ctx = {**backend, **executors[name]["securityContext"]}
        ctx["runAsUser"] = int(ctx["runAsUser"])
        assert violations({}, [(name, ctx)]) == []
        assert ctx["runAsUser"] != 0


def test_fuseml_builder_image_runs_non_root():
    """FuseML's workflow format has no pod settings: the image's USER decides."""
    image = fuseml.files()["build_mlflow_env.yaml"]["steps"][0]["image"]
    assert image.startswith("ghcr.io/mlflow-steps/mlflow-builder:")
    dockerfile = (ROOT / "components/builder/images/Dockerfile.unprivileged").read_text()
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users == ["65532:65532"]
    assert "buildah" not in dockerfile.split("ARG BASE", 1)[1].lower()


def test_the_check_catches_what_restricted_forbids():
    good = tekton.builder_task(tekton.TektonOptions())["spec"]["steps"][0]["securityContext"]
    assert violations({}, [("c", good)]) == []
    for bad, expected in [
        ({**good, "allowPrivilegeEscalation": True}, "allowPrivilegeEscalation"),
        ({**good, "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}, "SYS_ADMIN"),
        ({**good, "capabilities": {"drop": ["NET_RAW"]}}, "drop must hold ALL"),
        ({**good, "runAsUser": 0}, "runAsUser 0"),
        ({k: v for k, v in good.items() if k != "seccompProfile"}, "seccompProfile"),
        ({k: v for k, v in good.items() if k != "runAsNonRoot"}, "runAsNonRoot"),
        ({**good, "privileged": True}, "privileged"),
    ]:
        found = violations({}, [("c", bad)])
        assert any(expected in line for line in found), (expected, found)
    host = violations({}, [("c", good)], [{"name": "h", "hostPath": {"path": "/"}}])
    assert host == ["volume h: ['hostPath']"]
    assert violations({}, [("c", good)], [{"name": "e", "emptyDir": {}}]) == []
    assert violations({}, [("c", good)], pod_spec={"hostNetwork": True}) == ["pod: hostNetwork"]
    # A pod-level setting counts where the container has none.
    pod_only = {k: v for k, v in good.items() if k not in ("runAsNonRoot", "seccompProfile")}
    pod = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert violations(pod, [("c", pod_only)]) == []


# --- checkov ----------------------------------------------------------------------------------

# Checks skipped, with the reason (the doc lists them too).
SKIPPED = {
    # The RBAC file names no namespace on purpose: `kubectl apply -n <the workflows' namespace>`.
    ("CKV_K8S_21", "/argo/mlflow-steps-rbac.yaml"),
}


def checkov() -> str:
    found = shutil.which("checkov") or str(Path.home() / ".local/bin/checkov")
    require(
        os.access(found, os.X_OK),
        "needs checkov (scripts/setup-machine: uv tool install checkov, apart from the project's "
        "environment: its pins would downgrade packaging and boto3 there)",
    )
    return found


def test_checkov_argo_and_kubernetes_checks_pass_on_the_catalog():
    done = subprocess.run(
        [
            checkov(), "-d", str(CATALOG), "--framework", "argo_workflows", "kubernetes",
            "--skip-download", "--compact", "-o", "json",
        ],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    by_type = {r["check_type"]: r["results"] for r in reports}
    failed = {
        (c["check_id"], c["file_path"])
        for results in by_type.values()
        for c in results["failed_checks"]
    }
    assert failed <= SKIPPED, failed - SKIPPED
    passed = {(c["check_id"], c["file_path"]) for c in by_type["argo_workflows"]["passed_checks"]}
    for path in (
        "/argo/mlflow-steps-workflow-template.yaml",
        "/argo/examples/mlflow-build-and-train-workflow.yaml",
    ):
        assert ("CKV_ARGO_2", path) in passed and ("CKV_ARGO_1", path) in passed, passed

"""Generated YAML, run as the engines run it, on this machine: buildah in place of a kubelet.

No Kubernetes API server can run here, so this stands in for the parts of Tekton, Argo and
FuseML that turn a generated object into containers (a documented stand-in, not a mock of our
own code): parameters, results, workspace paths and Argo's `{{...}}` references are substituted
as each engine substitutes them, and an unresolved `$(...)` or `{{...}}` fails the run. Each
step runs in its image (`buildah from` + `buildah run --isolation chroot`) with:

- workspaces, Argo input artifacts and emptyDir volumes as host folders mounted at their paths;
- `/tekton/results` mounted (Tekton and FuseML results), Argo output parameters read from
  the files the template names (a host folder mounted at their directory);
- env values, `valueFrom.secretKeyRef` and `envFrom.secretRef` from the Secrets given;
- a privileged step gets the capabilities a privileged pod gives buildah inside it.

What cannot run here is said where it is met: a Tekton task from a remote resolver, or an Argo
git artifact (no git host is reachable), is an error unless its `when` skips it or the caller
gives the artifact's folder.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.images import BUILDAH_ENV

# What a privileged pod gives the buildah inside the builder image (verified here).
PRIVILEGED_CAPABILITIES = (
    "CAP_SYS_ADMIN",
    "CAP_MKNOD",
    "CAP_SYS_CHROOT",
    "CAP_SETFCAP",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_CHOWN",
)
TEKTON_REF = re.compile(r"\$\(([^()]*)\)")
ARGO_REF = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


class StepFailed(AssertionError):
    """A step exited non-zero; carries its output."""


@dataclass
class Container:
    image: str
    command: list[str]
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = ""
    mounts: dict[str, Path] = field(default_factory=dict)  # container path -> host folder
    privileged: bool = False


@dataclass
class StepRun:
    name: str
    seconds: float
    output: str


def substitute(text: str, pattern: re.Pattern, values: Mapping[str, str], where: str) -> str:
    def replace(match: re.Match) -> str:
        key = match.group(1).strip()
        if key not in values:
            raise AssertionError(f"{where}: unresolved reference {match.group(0)}")
        return values[key]

    return pattern.sub(replace, text)


def buildah(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["buildah", *argv], capture_output=True, text=True, env=BUILDAH_ENV, check=check
    )


def run_container(container: Container, name: str, log: list[StepRun]) -> str:
    """Run one container to completion; returns its output, raises StepFailed on failure."""
    started = time.monotonic()
    ctr = buildah("from", "--quiet", "--tls-verify=false", container.image).stdout.split()[-1]
    try:
        command = container.command
        if not command:  # no command: the image's entrypoint, as a kubelet does
            inspected = buildah("inspect", "--type", "container", ctr).stdout
            command = json.loads(inspected)["OCIv1"]["config"].get("Entrypoint") or []
        argv = ["run", "--isolation", "chroot"]
        for key, value in container.env.items():
            argv += ["--env", f"{key}={value}"]
        for path, host in container.mounts.items():
            argv += ["-v", f"{host}:{path}"]
        if container.workdir:
            argv += ["--workingdir", container.workdir]
        if container.privileged:
            argv += [f"--cap-add={cap}" for cap in PRIVILEGED_CAPABILITIES]
        done = buildah(*argv, ctr, "--", *command, *container.args, check=False)
    finally:
        buildah("rm", ctr, check=False)
    output = done.stdout + done.stderr
    log.append(StepRun(name, time.monotonic() - started, output))
    if done.returncode != 0:
        raise StepFailed(f"step {name} failed (exit {done.returncode}):\n{output[-6000:]}")
    return output


def secret_env(
    env_from: list[dict[str, Any]],
    env: list[dict[str, Any]],
    secrets: Mapping[str, Mapping[str, str]],
    sub: Callable[[str], str],
) -> dict[str, str]:
    """A container's environment: envFrom secrets first, then env (which wins), as a kubelet."""
    values: dict[str, str] = {}
    for source in env_from:
        ref = source["secretRef"]
        name = sub(ref["name"])
        if name in secrets:
            values.update(secrets[name])
        elif not ref.get("optional"):
            raise AssertionError(f"secret {name} does not exist")
    for item in env:
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            secret = secrets.get(sub(ref["name"]), {})
            if ref["key"] in secret:
                values[item["name"]] = secret[ref["key"]]
            elif not ref.get("optional"):
                raise AssertionError(f"secret {sub(ref['name'])} has no key {ref['key']}")
        else:
            values[item["name"]] = sub(str(item.get("value", "")))
    return values


def kubernetes_container(
    spec: dict[str, Any],
    sub: Callable[[str], str],
    secrets: Mapping[str, Mapping[str, str]],
    mounts: dict[str, Path],
) -> Container:
    """A Kubernetes container spec (a Tekton step, an Argo template's container), substituted."""
    return Container(
        image=sub(spec["image"]),
        command=[sub(a) for a in spec.get("command", [])],
        args=[sub(a) for a in spec.get("args", [])],
        env=secret_env(spec.get("envFrom", []), spec.get("env", []), secrets, sub),
        workdir=sub(spec.get("workingDir", "")),
        mounts=mounts,
        privileged=bool(spec.get("securityContext", {}).get("privileged")),
    )


# --- Tekton --------------------------------------------------------------------------------


def run_task(
    task: dict[str, Any],
    params: Mapping[str, str],
    workspaces: Mapping[str, Path],
    secrets: Mapping[str, Mapping[str, str]],
    workdir: Path,
    log: list[StepRun],
) -> dict[str, str]:
    """A TaskRun: returns the Task's results."""
    spec = task["spec"]
    name = task["metadata"]["name"]
    declared = {p["name"]: p for p in spec.get("params", [])}
    unknown = sorted(set(params) - set(declared))
    assert not unknown, f"{name}: TaskRun params {unknown} are not declared by the Task"
    values: dict[str, str] = {}
    for param_name, param in declared.items():
        if param_name in params:
            values[f"params.{param_name}"] = params[param_name]
        else:
            assert "default" in param, f"{name}: param {param_name} is required"
            values[f"params.{param_name}"] = param["default"]
    mounts: dict[str, Path] = {}
    for workspace in spec.get("workspaces", []):
        ws = workspace["name"]
        path = workspace.get("mountPath") or f"/workspace/{ws}"
        bound = ws in workspaces
        assert bound or workspace.get("optional"), f"{name}: workspace {ws} is not bound"
        values[f"workspaces.{ws}.path"] = path if bound else ""
        values[f"workspaces.{ws}.bound"] = str(bound).lower()
        if bound:
            mounts[path] = workspaces[ws]
    results_dir = workdir / "results"
    results_dir.mkdir(parents=True)
    mounts["/tekton/results"] = results_dir
    for result in spec.get("results", []):
        values[f"results.{result['name']}.path"] = f"/tekton/results/{result['name']}"
    volumes = {}
    for volume in spec.get("volumes", []):
        assert set(volume) == {"name", "emptyDir"}, f"{name}: only emptyDir volumes run here"
        volumes[volume["name"]] = workdir / "volumes" / volume["name"]
        volumes[volume["name"]].mkdir(parents=True)
    for step in spec["steps"]:
        where = f"Task {name} step {step['name']}"

        def sub(text: str, where: str = where) -> str:
            return substitute(text, TEKTON_REF, values, where)

        step_mounts = dict(mounts)
        for mount in step.get("volumeMounts", []):
            step_mounts[mount["mountPath"]] = volumes[mount["name"]]
        container = kubernetes_container(step, sub, secrets, step_mounts)
        assert "script" not in step, f"{where}: scripts are not run by this stand-in"
        run_container(container, f"{name}/{step['name']}", log)
    return {
        r["name"]: (results_dir / r["name"]).read_text()
        for r in spec.get("results", [])
        if (results_dir / r["name"]).exists()
    }


def when_allows(expressions: list[dict[str, Any]], sub: Callable[[str], str]) -> bool:
    for expression in expressions:
        found = sub(expression["input"]) in [sub(v) for v in expression["values"]]
        if found != (expression["operator"] == "in"):
            return False
    return True


def run_pipeline(
    pipeline: dict[str, Any],
    tasks: Mapping[str, dict[str, Any]],
    params: Mapping[str, str],
    workspaces: Mapping[str, Path],
    secrets: Mapping[str, Mapping[str, str]],
    workdir: Path,
    log: list[StepRun],
) -> dict[str, str]:
    """A PipelineRun: its tasks in order (runAfter and result references), returns its results."""
    spec = pipeline["spec"]
    values: dict[str, str] = {}
    for param in spec.get("params", []):
        values[f"params.{param['name']}"] = params.get(param["name"], param.get("default", ""))
    unknown = sorted(set(params) - {p["name"] for p in spec.get("params", [])})
    assert not unknown, f"PipelineRun params {unknown} are not declared by the Pipeline"
    pending = list(spec["tasks"])
    finished: set[str] = set()
    while pending:
        task = next(t for t in pending if set(after(t)) <= finished)
        pending.remove(task)
        where = f"Pipeline task {task['name']}"

        def sub(text: str, where: str = where) -> str:
            return substitute(text, TEKTON_REF, values, where)

        finished.add(task["name"])
        if not when_allows(task.get("when", []), sub):
            continue  # skipped, as Tekton skips it
        ref = task["taskRef"]
        assert "name" in ref, f"{where}: a task from the {ref.get('resolver')} resolver"
        task_params = {p["name"]: sub(p["value"]) for p in task.get("params", [])}
        task_workspaces = {
            w["name"]: workspaces[w["workspace"]]
            for w in task.get("workspaces", [])
            if w["workspace"] in workspaces
        }
        results = run_task(
            tasks[ref["name"]],
            task_params,
            task_workspaces,
            secrets,
            workdir / task["name"],
            log,
        )
        for result, value in results.items():
            values[f"tasks.{task['name']}.results.{result}"] = value
    return {
        r["name"]: substitute(r["value"], TEKTON_REF, values, "Pipeline results")
        for r in spec.get("results", [])
    }


def after(task: dict[str, Any]) -> list[str]:
    refs = re.findall(r"\$\(tasks\.([^.]+)\.results\.", json.dumps(task.get("params", [])))
    return [*task.get("runAfter", []), *refs]


# --- Argo ------------------------------------------------------------------------------------


def run_template(
    template: dict[str, Any],
    arguments: Mapping[str, str],
    artifacts: Mapping[str, Path],
    secrets: Mapping[str, Mapping[str, str]],
    workdir: Path,
    log: list[StepRun],
) -> dict[str, str]:
    """One container template: input parameters and artifacts in, output parameters out."""
    name = template["name"]
    declared = template.get("inputs", {}).get("parameters", [])
    unknown = sorted(set(arguments) - {p["name"] for p in declared})
    assert not unknown, f"template {name}: arguments {unknown} are not its inputs"
    values = {}
    for param in declared:
        value = arguments.get(param["name"], param.get("default"))
        assert value is not None, f"template {name}: input {param['name']} is required"
        values[f"inputs.parameters.{param['name']}"] = value
    mounts: dict[str, Path] = {}
    for artifact in template.get("inputs", {}).get("artifacts", []):
        assert artifact["name"] in artifacts, f"template {name}: artifact {artifact['name']}"
        mounts[artifact["path"]] = artifacts[artifact["name"]]
    outputs = {}
    for index, output in enumerate(template.get("outputs", {}).get("parameters", [])):
        path = Path(output["valueFrom"]["path"])
        host = workdir / "outputs" / str(index)
        host.mkdir(parents=True, exist_ok=True)
        mounts.setdefault(str(path.parent), host)
        outputs[output["name"]] = (mounts[str(path.parent)] / path.name, output["valueFrom"])
    for volume in template.get("volumes", []):
        assert set(volume) == {"name", "emptyDir"}, f"{name}: only emptyDir volumes run here"
    volume_dirs = {v["name"]: workdir / "volumes" / v["name"] for v in template.get("volumes", [])}
    spec = template["container"]
    for mount in spec.get("volumeMounts", []):
        volume_dirs[mount["name"]].mkdir(parents=True, exist_ok=True)
        mounts[mount["mountPath"]] = volume_dirs[mount["name"]]
    where = f"template {name}"

    def sub(text: str) -> str:
        return substitute(text, ARGO_REF, values, where)

    run_container(kubernetes_container(spec, sub, secrets, mounts), name, log)
    found = {}
    for output_name, (path, value_from) in outputs.items():
        found[output_name] = path.read_text() if path.exists() else value_from.get("default", "")
    return found


def run_dag(
    workflow: dict[str, Any],
    templates: Mapping[str, dict[str, Any]],
    parameters: Mapping[str, str],
    artifacts: Mapping[str, Path],
    secrets: Mapping[str, Mapping[str, str]],
    workdir: Path,
    log: list[StepRun],
) -> dict[str, dict[str, str]]:
    """A Workflow whose entrypoint is a DAG of templateRef tasks; `artifacts` gives the folder of
    each named input artifact (its git source is unreachable here). Returns each task's outputs."""
    spec = workflow["spec"]
    values = {
        f"workflow.parameters.{p['name']}": parameters.get(p["name"], p.get("value", ""))
        for p in spec.get("arguments", {}).get("parameters", [])
    }
    entry = next(t for t in spec["templates"] if t["name"] == spec["entrypoint"])
    pending = list(entry["dag"]["tasks"])
    outputs: dict[str, dict[str, str]] = {}
    while pending:
        task = next(t for t in pending if set(filter(None, [t.get("depends")])) <= set(outputs))
        pending.remove(task)
        where = f"DAG task {task['name']}"
        args = {
            p["name"]: substitute(p["value"], ARGO_REF, values, where)
            for p in task.get("arguments", {}).get("parameters", [])
        }
        template = templates[task["templateRef"]["template"]]
        outputs[task["name"]] = run_template(
            template, args, artifacts, secrets, workdir / task["name"], log
        )
        for key, value in outputs[task["name"]].items():
            values[f"tasks.{task['name']}.outputs.parameters.{key}"] = value
    return outputs


# --- FuseML ----------------------------------------------------------------------------------


def run_fuseml(
    workflow: dict[str, Any],
    codeset: Path,
    step_inputs: Mapping[str, Mapping[str, str]],
    extensions: Mapping[str, Mapping[str, str]],
    workdir: Path,
    log: list[StepRun],
    privileged: tuple[str, ...] = ("builder",),
) -> dict[str, dict[str, str]]:
    """A FuseML workflow: each step's image runs its entrypoint with the codeset at its path,
    each step input (those of the YAML plus `step_inputs`, as a user adds them) as
    FUSEML_<NAME>, the extensions' env, TASK_RESULT and /tekton/results for its output."""
    # A workflow input is its default (a user's value when they give one: `step_inputs`); the
    # codeset input, which has none, stands for the codeset mounted at its path.
    values = {
        f"inputs.{i['name']}": str(i.get("default", i["name"])) for i in workflow.get("inputs", [])
    }
    outputs: dict[str, dict[str, str]] = {}
    for step in workflow["steps"]:
        where = f"FuseML step {step['name']}"

        def sub(text: str, where: str = where) -> str:
            return substitute(text, ARGO_REF, values, where)

        env: dict[str, str] = {}
        mounts: dict[str, Path] = {}
        for item in step.get("inputs", []):
            if "codeset" in item:
                sub(item["codeset"]["name"])
                mounts[item["codeset"]["path"]] = codeset
            else:
                env["FUSEML_" + item["name"].upper().replace("-", "_")] = sub(str(item["value"]))
        for key, value in step_inputs.get(step["name"], {}).items():
            env["FUSEML_" + key.upper().replace("-", "_")] = value
        for extension in step.get("extensions", []):
            if extension["name"] not in extensions:
                raise AssertionError(f"{where}: no Extension Registry record {extension['name']}")
            env.update(extensions[extension["name"]])
        (output,) = step.get("outputs", [])
        results = workdir / step["name"] / "results"
        results.mkdir(parents=True)
        mounts["/tekton/results"] = results
        env["TASK_RESULT"] = output["name"]
        container = Container(
            image=sub(step["image"]),
            command=[],
            args=[],
            env=env,
            mounts=mounts,
            privileged=step["name"] in privileged,  # FuseML's builder runs its buildah
        )
        run_container(container, step["name"], log)
        value = (results / output["name"]).read_text().strip()
        outputs[step["name"]] = {output["name"]: value}
        values[f"steps.{step['name']}.outputs.{output['name']}"] = value
    return outputs

"""The shape of a step spec: the one hand-edited interface of each step.

The CLI, the FuseML env-var names and (later) every engine's generator are derived from it.
Input names keep the seed's snake_case names; each consumer applies its own convention.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from .problems import StepError

# The words both steps accept for booleans (FuseML and the engines pass strings). The runtime
# module keeps the same table for the image (it ships stdlib-only); a test checks they agree.
BOOLEAN_WORDS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
    "": False,
}


@dataclass(frozen=True)
class Input:
    name: str
    description: str
    default: str = ""
    type: str = "string"  # "string" or "boolean"
    choices: tuple[str, ...] = ()
    # Only for the CLI: generated engine YAML fixes it instead (e.g. the builder's `engine`,
    # which the builder image decides).
    cli_only: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        """FuseML passes each step input `x_y` as `FUSEML_X_Y`."""
        return "FUSEML_" + self.name.upper()


@dataclass(frozen=True)
class Output:
    """A step output. With `fields`, the output is an object written as one JSON file
    (`{"uri": ..., "digest": ...}`, Tekton Chains' `*ARTIFACT_INPUTS` shape), and each field can
    also be written alone (`field_flag`) for engines whose outputs are strings (Argo, KFP)."""

    name: str
    description: str
    fields: tuple[Output, ...] = ()


# The non-root user the step images run as (the `nonroot` user of distroless images and of the
# Tekton catalog's git-clone Task, so a workspace it cloned is the steps' own).
NONROOT_UID = 65532


@dataclass(frozen=True)
class Resources:
    """Kubernetes resource requests and limits of a step's container (quantities as Kubernetes
    writes them: CPU in cores or millicores `500m`, memory in bytes with `Mi`/`Gi`). Engines
    expose them as parameters where they can (Argo, KFP) and as defaults a run overrides where
    they cannot (Tekton: `taskRunSpecs[].computeResources`)."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    def kubernetes(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


@dataclass(frozen=True)
class Security:
    """A step container's privileges. The default is the Pod Security Standards' `restricted`
    profile (kubernetes.io/docs/concepts/security/pod-security-standards): non-root
    (`run_as_user` != 0), no privilege escalation, every capability dropped, the runtime's
    default seccomp profile. `run_as_user=0` (Kaniko) or `privileged` (buildah) are declared
    explicitly, as the Tekton catalog's recommendations ask, and leave that profile."""

    run_as_user: int = NONROOT_UID
    privileged: bool = False

    @property
    def restricted(self) -> bool:
        return self.run_as_user != 0 and not self.privileged

    def container_context(self) -> dict[str, object]:
        """The container's `securityContext`, in Kubernetes' field names."""
        if self.privileged:
            return {"privileged": True}
        if not self.restricted:
            return {"runAsUser": self.run_as_user}
        return {
            "runAsNonRoot": True,
            "runAsUser": self.run_as_user,
            "runAsGroup": self.run_as_user,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }


@dataclass(frozen=True)
class StepSpec:
    """A step, once: what every engine's generator reads.

    `command` runs in `image` with the codeset at `workdir`; `output_flags` maps each output
    to the CLI flag that writes it to a file; `secret_env` are variables that only ever come
    from secrets; `image` is None when the image is an input (the runtime step).
    """

    name: str
    description: str
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]
    command: tuple[str, ...] = ()
    image: str | None = None
    workdir: str = "/project"
    output_flags: dict[str, str] = field(default_factory=dict)
    secret_env: tuple[str, ...] = ()
    display_name: str = ""
    security: Security = Security()
    resources: Resources = Resources("500m", "1Gi", "2", "4Gi")

    @property
    def engine_inputs(self) -> tuple[Input, ...]:
        """The inputs that generated engine YAML exposes."""
        return tuple(i for i in self.inputs if not i.cli_only)

    def input(self, name: str) -> Input:
        return next(i for i in self.inputs if i.name == name)

    def string_outputs(self) -> list[tuple[Output, str]]:
        """(output, CLI flag) of each string the step writes, for engines whose outputs are
        strings (Argo, KFP): an object output gives one per field (`source` ->
        `source_uri` written by `--source-uri-output`)."""
        found: list[tuple[Output, str]] = []
        for output in self.outputs:
            flag = self.output_flags[output.name]
            if not output.fields:
                found.append((output, flag))
            for item in output.fields:
                found.append(
                    (
                        Output(f"{output.name}_{item.name}", item.description),
                        field_flag(flag, item.name),
                    )
                )
        return found


def field_flag(flag: str, field_name: str) -> str:
    """An object output's flag for one field: `--source-output`, `uri` -> `--source-uri-output`."""
    return flag.removesuffix("-output") + f"-{field_name}-output"


def parse_bool(value: str, what: str) -> bool:
    text = value.strip().lower()
    if text in BOOLEAN_WORDS:
        return BOOLEAN_WORDS[text]
    raise ValueError(f"{what}: `{value}` is not a boolean; use true or false")


def resolve(
    spec: StepSpec, given: Mapping[str, object], environ: Mapping[str, str] = os.environ
) -> dict[str, object]:
    """Value of each input: the CLI flag if given, else `FUSEML_<NAME>`, else the default."""
    values: dict[str, object] = {}
    problems = []
    for item in spec.inputs:
        raw = given.get(item.name)
        source = item.flag
        if raw is None:
            raw, source = environ.get(item.env), item.env
        if raw is None:
            raw, source = item.default, f"default of {item.name}"
        if item.type == "boolean":
            if isinstance(raw, bool):
                values[item.name] = raw
            else:
                try:
                    values[item.name] = parse_bool(str(raw), source)
                except ValueError as exc:
                    problems.append(str(exc))
        else:
            text = str(raw).strip()
            if item.choices and text not in item.choices:
                problems.append(f"{source}: `{text}` is not one of {', '.join(item.choices)}")
            values[item.name] = text
    if problems:
        raise StepError(problems)
    return values

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
    name: str
    description: str


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

    @property
    def engine_inputs(self) -> tuple[Input, ...]:
        """The inputs that generated engine YAML exposes."""
        return tuple(i for i in self.inputs if not i.cli_only)

    def input(self, name: str) -> Input:
        return next(i for i in self.inputs if i.name == name)


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

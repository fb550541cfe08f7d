"""Read a YAML file of the codeset; a syntax error becomes a problem with its line and column.

The file is untrusted: it is read through `limits` (a regular file, at most
`limits.TEXT_FILE` bytes) and parsed by PyYAML's safe loader with aliases refused (`*name`):
nested aliases expand exponentially ("billion laughs": 521 bytes took 47 s and 2.2 GB before a
MemoryError), and MLflow's own files never need them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ...problems import StepError
from . import limits


class NoAliasLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses aliases: every node is written out once."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"uses the alias *{event.anchor}, which the builder does not read (aliases can "
                "expand without bound); write the value out in full",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def load_yaml(path: Path, problems: list[str]) -> Any:
    try:
        text = limits.read_text(path, path.name, limits.TEXT_FILE)
    except StepError as exc:
        problems.extend(exc.problems)
        return None
    try:
        return yaml.load(text, Loader=NoAliasLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        fix = "" if "alias" in reason else "; fix the syntax"
        problems.append(f"{path.name}: not valid YAML{where}: {reason}{fix}")
    except RecursionError:
        problems.append(f"{path.name}: nested too deeply to read; flatten it")
    return None


def scalar_text(path: Path, key: str) -> str | None:
    """The text of the top-level `key`'s value as written in the YAML file at `path` (`3.10`
    where the loaded value is the float 3.1); None when it is not a plain scalar there."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value_node in node.value:
        if key_node.value == key and isinstance(value_node, yaml.ScalarNode):
            return str(value_node.value)
    return None

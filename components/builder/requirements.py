"""Normalise pip requirement lines, so the tag only changes when the environment does.

Normal form, line by line:
- comments (`# ...`, also trailing), blank lines, line continuations and surrounding
  whitespace are dropped;
- a requirement is re-written by `packaging`: the name in PEP 503 form (`Scikit_Learn` ->
  `scikit-learn`), extras sorted, version specifiers sorted, markers in canonical spacing,
  `--hash` options sorted;
- option lines (`--index-url U`, `--pre`, ...) keep their value, with single spaces;
- `-r FILE` / `--requirement FILE` is replaced by the normalised lines of FILE (relative to the
  file that names it), so an edit to an included file changes the tag too;
- the resulting lines are sorted and de-duplicated: line order never changes the tag.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

MLFLOW_DISTRIBUTIONS = {"mlflow", "mlflow-skinny"}
_COMMENT = re.compile(r"(^|\s)#.*$")
_INCLUDE = re.compile(r"^(-r|--requirement)(\s+|=)(?P<file>.+)$")
_OPTION = re.compile(r"^(?P<name>--?[A-Za-z][\w-]*)(?:\s*=\s*|\s+)?(?P<value>.*)$")
_EDITABLE = re.compile(r"^(-e|--editable)(\s|=|$)")


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) with comments stripped and `\\` continuations joined."""
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw).strip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = (pending + line).strip(), ""
        if line:
            lines.append((start, line))
    if pending.strip():
        lines.append((start, pending.strip()))
    return lines


def normalise_requirement(line: str) -> str:
    """One requirement in canonical form; raises InvalidRequirement."""
    head, *hashes = re.split(r"\s+(?=--hash[=\s])", line)
    req = Requirement(head)
    text: str = canonicalize_name(req.name)
    if req.extras:
        text += "[" + ",".join(sorted(canonicalize_name(e) for e in req.extras)) + "]"
    if req.url:
        text += " @ " + req.url
    elif req.specifier:
        text += ",".join(sorted(str(s) for s in req.specifier))
    if req.marker:
        text += "; " + str(req.marker)
    hash_values = sorted(h.split("=", 1)[-1].strip() if "=" in h else h.split()[-1] for h in hashes)
    return " ".join([text, *(f"--hash={h}" for h in hash_values)])


def normalise_option(line: str) -> str:
    """`--index-url=U`, `--index-url   U` -> `--index-url U`; `-i U` keeps its short form."""
    option = _OPTION.match(line)
    if not option:
        return line
    return " ".join(filter(None, [option["name"], option["value"]]))


def normalise_lines(
    lines: list[str], where: str, base_dir: Path, problems: list[str], seen: frozenset = frozenset()
) -> list[str]:
    """Normalise requirement lines (already stripped of comments); collects problems."""
    out: list[str] = []
    for number, line in enumerate(lines, start=1):
        at = f"{where} line {number}"
        include = _INCLUDE.match(line)
        if include:
            out.extend(read_requirements_file(base_dir / include["file"].strip(), problems, seen))
        elif _EDITABLE.match(line):
            problems.append(
                f"{at}: `{line}` is an editable install; the builder never bakes the codeset into "
                "the image (it is mounted at /project at run time): remove the line, or list "
                "the package by name"
            )
        elif line.startswith("-"):
            out.append(normalise_option(line))
        else:
            try:
                out.append(normalise_requirement(line))
            except InvalidRequirement as exc:
                problems.append(f"{at}: `{line}` is not a valid requirement ({exc}); see PEP 508")
    return sorted(set(out))


def read_requirements_file(
    path: Path, problems: list[str], seen: frozenset = frozenset()
) -> list[str]:
    if path.resolve() in seen:
        problems.append(f"{path.name}: includes itself through -r; remove the cycle")
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path.name}: cannot be read ({exc.__class__.__name__}); check -r paths")
        return []
    lines = [line for _, line in logical_lines(text)]
    return normalise_lines(lines, path.name, path.parent, problems, seen | {path.resolve()})


def names(lines: list[str]) -> set[str]:
    found: set[str] = set()
    for line in lines:
        if not line.startswith("-"):
            found.add(canonicalize_name(Requirement(line.split(" --hash")[0]).name))
    return found


def mentions_mlflow(lines: list[str]) -> bool:
    return bool(names(lines) & MLFLOW_DISTRIBUTIONS)

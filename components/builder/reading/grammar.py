"""The grammar of every builder input, checked before anything runs.

Each value the user or the codeset gives is matched against the grammar of the field it is
for, and refused, naming the input, when it does not fit: no value reaches a Dockerfile, a
script, an installer or a registry request outside its field.

- image references: distribution/reference's grammar (`reference/regexp.go`, docker's and
  containers/image's): `[domain/]path[:tag][@digest]`, lowercase path components, tag
  `[\\w][\\w.-]{0,127}`, name at most 255 characters; digests must be `sha256:` + 64
  lowercase hex (what the builder pins a FROM to), also when read from a registry's
  `Docker-Content-Digest` header;
- registry hosts: the reference's domain (`host[:port]`, an IPv6 literal in brackets);
  repositories: its path components;
- Python versions: `X[.Y[.Z]]` with an optional pre-release (`3.13.0rc1`): they become a
  `python:<version>` tag and uv's `--python`; `miniconda_version`: a tag;
- `context`: a path of printable characters (that it stays inside the workspace is
  `codeset.codeset_folder`'s check);
- `mlflow_requirement`: PEP 508 requirements read by the codeset's own reader
  (`requirements.py`), named, no URL, path, option or `${VAR}`.

Every function raises `StepError` (one message per problem) or returns the value unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ...problems import StepError

if TYPE_CHECKING:
    from ..planning.options import BuildOptions

# distribution/reference regexp.go, written out.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
DOMAIN = rf"{_HOST}(?::[0-9]+)?"
TAG = r"[\w][\w.-]{0,127}"
_ANY_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
REPOSITORY_RE = re.compile(rf"{PATH_COMPONENT}(?:/{PATH_COMPONENT})*")
DOMAIN_RE = re.compile(DOMAIN)
TAG_RE = re.compile(TAG)
REFERENCE_RE = re.compile(
    rf"(?P<name>(?:(?P<domain>{DOMAIN})/)?{PATH_COMPONENT}(?:/{PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{TAG}))?(?:@(?P<digest>{_ANY_DIGEST}))?"
)
SHA256_RE = re.compile(r"sha256:[0-9a-f]{64}")
NAME_MAX = 255
PYTHON_VERSION_RE = re.compile(r"[0-9]+(?:\.[0-9]+){0,2}(?:(?:a|b|rc)[0-9]+)?")
EXAMPLE_REFERENCE = (
    "python:3.11, registry.example.com/team/base:1.0 or name@sha256:<64 lowercase hex>"
)


def reference_problem(value: str) -> str:
    """Why `value` is not an image reference ("" when it is one)."""
    match = REFERENCE_RE.fullmatch(value)
    if not match:
        return (
            f"is not an image reference (distribution grammar); expected e.g. {EXAMPLE_REFERENCE}"
        )
    if len(match["name"]) > NAME_MAX:
        return f"has a name longer than {NAME_MAX} characters"
    if match["digest"] is not None and not SHA256_RE.fullmatch(match["digest"]):
        return "has a digest that is not sha256: followed by 64 lowercase hex digits"
    return ""


def check_reference(value: str, what: str) -> str:
    """`value` when it is an image reference; StepError naming `what` otherwise."""
    why = reference_problem(value) if isinstance(value, str) else "is not a string"
    if why:
        raise StepError(f"{what} {value!r} {why}")
    return value


def check_digest(value: str, what: str) -> str:
    """`value` when it is `sha256:` + 64 lowercase hex; StepError naming `what` otherwise."""
    if not SHA256_RE.fullmatch(value):
        raise StepError(
            f"{what} {value[:80]!r} is not a digest (sha256: followed by 64 lowercase hex "
            "digits); refusing to use it"
        )
    return value


def python_version_problem(value: str) -> str:
    if PYTHON_VERSION_RE.fullmatch(value):
        return ""
    return "is not a Python version; write e.g. 3.11 or 3.10.14"


def check_python_version(value: str, what: str) -> str:
    why = python_version_problem(value)
    if why:
        raise StepError(f"{what} {value!r} {why}")
    return value


def context_problem(value: str) -> str:
    if not value:
        return ""
    if any(not ch.isprintable() for ch in value) or "\\" in value:
        return (
            "holds a control character or backslash; give a relative folder such as projects/wine"
        )
    if len(value) > 4096:
        return "is longer than 4096 characters"
    return ""


def option_problems(options: BuildOptions) -> list[str]:
    """Every problem of the builder's own inputs, each naming the input."""
    problems = []

    def bad(name: str, value: str, why: str) -> None:
        problems.append(f"{name} {value!r} {why}")

    for name in ("registry", "pull_registry"):
        value = getattr(options, name)
        if (value or name == "registry") and not DOMAIN_RE.fullmatch(value):
            bad(name, value, "is not a registry host; write host or host:port, e.g. ghcr.io")
    if not REPOSITORY_RE.fullmatch(options.repository) or len(options.repository) > NAME_MAX:
        bad(
            "repository",
            options.repository,
            "is not a repository name; write lowercase path components such as mlflow/trainer",
        )
    if not TAG_RE.fullmatch(options.miniconda_version):
        bad(
            "miniconda_version",
            options.miniconda_version,
            "is not an image tag ([A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128); e.g. 23.5.2-0",
        )
    if options.base_image:
        why = reference_problem(options.base_image)
        if why:
            bad("base_image", options.base_image, why)
    why = python_version_problem(options.python_version)
    if why:
        bad("python_version", options.python_version, why)
    why = context_problem(options.context)
    if why:
        bad("context", options.context, why)
    problems += mlflow_requirement_problems(options.mlflow_requirement)
    problems += platform_problems(options.platforms)
    return problems


def platform_problems(value: str) -> list[str]:
    """`platforms`: comma-separated os/architecture[/variant] (`platforms.parse_platforms`)."""
    from ..planning.platforms import parse_platforms

    try:
        parse_platforms(value)
    except StepError as exc:
        return list(exc.problems)
    return []


def check_options(options: BuildOptions) -> None:
    """StepError listing every input that does not fit its grammar."""
    problems = option_problems(options)
    if problems:
        raise StepError(problems)


def mlflow_requirement_problems(value: str) -> list[str]:
    """`mlflow_requirement`: whitespace-separated PEP 508 requirements, each read by the
    codeset's reader (`requirements.Reader`), each a named requirement: no option, no path,
    no URL (`name @ URL`), no `${VAR}` (pip would expand it from the install's environment,
    where the index credentials are)."""
    from . import requirements as reqs

    problems = []
    for token in value.split():
        why = ""
        if "$" in token:
            why = "names an environment variable (`$`)"
        elif token.startswith("-"):
            why = "is an option"
        elif "@" in token or reqs.is_url(token) or "://" in token:
            why = "is (or is part of) a URL requirement"
        elif reqs.looks_like_path(token):
            why = "is a path"
        else:
            found: list[str] = []
            read = reqs.read_requirement_list(
                [token], "mlflow_requirement", Path("/"), Path("/"), found
            )
            if found:
                why = found[0].split(f"`{token}` ", 1)[-1]
            elif any(reqs.requirement_name(line) is None for line in read.lines):
                why = "is not a named requirement"
        if why:
            problems.append(
                f"mlflow_requirement {token!r} {why}; give PEP 508 requirements by name and "
                "version only, e.g. mlflow-skinny==2.22.0"
            )
    return problems

"""The README and every page under docs/ run: every Python snippet in them is executed, every
`mlflow-steps` flag they name is one the CLI's own parser accepts, the usage blocks list every
option, every benchmark command they quote takes the flags quoted, every other flag they name
is attributed to the tool it belongs to, and every link between them leads to a file (and a
heading) that exists."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_steps.cli import make_parser
from mlflow_steps.components.builder.reading.requirements import (
    FLAG_OPTIONS,
    REQUIREMENT_OPTIONS,
    VALUE_OPTIONS,
)
from mlflow_steps.components.builder.step import BUILDER
from mlflow_steps.components.runtime.cli import make_parser as runtime_parser

ROOT = Path(__file__).resolve().parent.parent
# The README and every docs/ page, by path relative to the root.
PAGES = {
    str(path.relative_to(ROOT)): path.read_text()
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# Flags the README names that belong to other tools, and the tool.
OTHER_TOOLS = {
    "--build-arg": "docker/buildah/podman build",
    "--compression": "Kaniko",
    "--compression-format": "buildah commit",
    "--context": "Kaniko",
    "--destination": "Kaniko",
    "--digest-file": "Kaniko",
    "--dockerfile": "Kaniko",
    "--reproducible": "Kaniko",
    "--single-snapshot": "Kaniko",
    **dict.fromkeys(["--no-push", "--oci-layout-path", "--tar-path"], "Kaniko"),
    "--digestfile": "podman push",
    "--from-literal": "kubectl create secret",
    "--from-file": "kubectl create secret",
    "--secret": "buildah/podman/docker build",
    "--mount": "a Dockerfile RUN (RUN --mount=type=secret)",
    # The options pip 26.3 reads in a requirements file, as requirements.py records them.
    **dict.fromkeys(
        [
            name
            for name in [*VALUE_OPTIONS.values(), *FLAG_OPTIONS, *REQUIREMENT_OPTIONS.values()]
            if name.startswith("--")
        ],
        "pip requirement files",
    ),
    "--flag": "an entry point's command (an MLproject example)",
    "--invalidation-mode": "python -m compileall",
    "--isolation": "buildah run",
    **dict.fromkeys(
        ["--root", "--stdin", "--emit"],
        "components/builder/backends/recipe_files/compile-bytecode.py",
    ),
    "--refresh": "uv pip compile",
    "--tag": "buildah build",
    "--layers": "buildah/podman build",
    "--timestamp": "buildah build",
    "--no-compile": "pip install",
    "--upgrade": "pip install",
    "--download-only": "conda install",
    "--dry-run": "conda install",
    "--json": "conda install",
    "--offline": "conda install",
    "--no-install-recommends": "apt-get install",
    **dict.fromkeys(["--reuid", "--regid", "--clear-groups", "--no-new-privs"], "setpriv"),
    "--library-path": "the dynamic loader (ld.so)",
    "--alpha": "examples/sklearn-pip/train.py",
    "--disable-fallback": "pypiserver",
    "--format": "uv pip compile",
    "--generate-hashes": "uv pip compile",
    "--python-platform": "uv pip compile",
    "--universal": "uv pip compile",
    **dict.fromkeys(["--arch", "--foreign", "--include"], "debootstrap"),
    "--fsys-tarfile": "dpkg-deb",
    "--keep-directory-symlink": "tar",
    "--platform": "pip download",
    "--frozen": "uv export",
    "--no-dev": "uv export",
    "--require-hashes": "pip and uv pip install",
    "--strict": "twine check",
    "--index-strategy": "uv pip install",
    "--prerelease": "uv pip install",
    "--prerelease-package": "uv pip install",
    "--allow-insecure-host": "uv pip install",
    "--config-settings-package": "uv pip install",
    "--no-build": "uv pip compile",
    "--no-deps": "pip download / uv pip install",
    "--network": "a Dockerfile RUN (RUN --network=none)",
}


def code_blocks(language: str, page: str | None = None) -> list[str]:
    """The `language` blocks of one page, or of every page (None)."""
    texts = [PAGES[page]] if page else list(PAGES.values())
    return [
        body
        for text in texts
        for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S)
        if lang == language
    ]


def snippets() -> list[tuple[str, int]]:
    return [(page, n) for page in PAGES for n in range(len(code_blocks("python", page)))]


def parsers() -> dict[str, argparse.ArgumentParser]:
    """{"build": its parser, "stack up": ..., "": the top level}."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        found[name] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, child in action.choices.items():
                    walk(child, f"{name} {sub}".strip())

    walk(make_parser(), "")
    return found


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def commands_in(page: str) -> list[tuple[str, str]]:
    """(command, the rest of its line) of every `mlflow-steps COMMAND ...` in a sh block (with
    its continuation lines) or an inline code span of `page`."""
    found = []
    for block in code_blocks("sh", page):
        joined = re.sub(r"\\\n|\n(?=\s+\[)", " ", block)
        found += re.findall(r"mlflow-steps ((?:stack )?[a-z]+)([^\n]*)", joined)
    found += re.findall(r"`mlflow-steps ((?:stack )?[a-z]+)([^`]*)`", PAGES[page])
    return found


@pytest.mark.parametrize(("page", "number"), snippets())
def test_python_snippet_runs(page, number, tmp_path):
    snippet = code_blocks("python", page)[number]
    done = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, f"{page}:\n{snippet}\n{done.stderr[-3000:]}"


def test_the_pages_have_python_snippets():
    assert len(code_blocks("python", "README.md")) >= 2
    assert len(snippets()) >= 3


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_mlflow_steps_command_takes_its_flags(page):
    known = parsers()
    for command, rest in commands_in(page):
        if command not in known:
            continue  # prose such as `mlflow-steps images` builds ...
        unknown = set(FLAG.findall(rest)) - options(known[command])
        assert not unknown, f"{page}: mlflow-steps {command}: {sorted(unknown)} not accepted"


def test_the_pages_name_mlflow_steps_commands():
    known = parsers()
    checked = [c for page in PAGES for c, _ in commands_in(page) if c in known]
    assert len(checked) >= 10
    assert {"build", "run"} <= {c for c, _ in commands_in("README.md")}


@pytest.mark.parametrize("command", ["build", "run", "images"])
def test_usage_block_lists_every_option(command):
    """The usage block (`mlflow-steps COMMAND PATH [...]`, on one page of them all) names each
    option (one spelling of each); `run`'s block leaves out the builder inputs it shares with
    `build`."""
    parser = parsers()[command]
    blocks = [
        b
        for b in code_blocks("sh")
        if re.match(rf"mlflow-steps {command} (PATH|--registry R)\b", b)
    ]
    assert len(blocks) == 1, blocks
    named = set(FLAG.findall(blocks[0]))
    shared = {item.flag for item in BUILDER.inputs} if command == "run" else set()
    missing = [
        action.option_strings
        for action in parser._actions
        if action.option_strings
        and action.dest != "help"
        and not named & set(action.option_strings)
        and not set(action.option_strings) <= shared
    ]
    assert missing == [], f"`mlflow-steps {command}` usage block lacks {missing}"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_other_flag_belongs_to_a_named_tool_or_a_benchmark(page):
    """A flag that no mlflow-steps parser, the in-image runtime and no quoted benchmark takes
    must be one of OTHER_TOOLS (so a misspelt or removed flag of ours fails here)."""
    text = PAGES[page]
    ours = set().union(*(options(p) for p in parsers().values()), options(runtime_parser()))
    benchmarks = set()
    for script, rest in re.findall(r"python3?\s+(benchmarks/\w+\.py)([^`]*)", text):
        benchmarks |= set(FLAG.findall(rest))
        help_text = subprocess.run(
            [sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True
        ).stdout
        for flag in FLAG.findall(rest):
            assert flag in help_text, f"{page}: {script} does not take {flag}"
    unattributed = set(FLAG.findall(text)) - ours - benchmarks - set(OTHER_TOOLS)
    assert unattributed == set(), page


LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(text: str) -> set[str]:
    """GitHub's anchors for the headings of `text`: lower case, punctuation but `-` and `_`
    dropped, spaces as `-`."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_link_leads_to_a_file_and_heading_that_exist(page):
    broken = []
    for target in LINK.findall(PAGES[page]):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        file, _, anchor = target.partition("#")
        path = (ROOT / page).parent / file if file else ROOT / page
        if not path.exists() or (anchor and anchor not in anchors(path.read_text())):
            broken.append(target)
    assert broken == [], f"{page}: {broken}"


def test_every_docs_page_is_linked_from_the_index():
    index = PAGES["docs/README.md"]
    linked = {target.partition("#")[0] for target in LINK.findall(index)}
    pages = {Path(page).name for page in PAGES if page.startswith("docs/")} - {"README.md"}
    assert pages - linked == set()

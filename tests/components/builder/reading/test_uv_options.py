"""What uv is given for each option pip reads in a requirements file (uv_options.py); the
installs themselves are compared with pip's in test_pip_meaning_e2e.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlflow_steps.components.builder.planning.plan import RequirementSet, recipe_file, set_files
from mlflow_steps.components.builder.reading import requirements as reqs
from mlflow_steps.components.builder.reading.uv_options import uv_install

STRATEGY = "--index-strategy=unsafe-best-match"

# normalised lines -> (uv arguments after the strategy, lines uv reads, own index)
TABLE = [
    (["six"], [], ["six"], False),
    (["--pre", "six"], ["--prerelease=allow"], ["six"], False),
    (["--all-releases :all:", "six"], ["--prerelease=allow"], ["six"], False),
    (["--all-releases a,b", "a"], ["--prerelease-package=a=allow", "--prerelease-package=b=allow"],
     ["a"], False),
    (["--only-final :all:", "six"], ["--prerelease=disallow"], ["six"], False),
    (["--only-final a", "a"], ["--prerelease-package=a=disallow"], ["a"], False),
    (["--trusted-host h:8080", "six"], ["--allow-insecure-host=h:8080"], ["six"], False),
    (["--no-require-hashes", "six"], [], ["six"], False),
    (["pkg --config-settings=k=v --config-settings=x=y"],
     ["--config-settings-package=pkg:k=v", "--config-settings-package=pkg:x=y"], ["pkg"], False),
    (["--index-url http://i/simple", "six"], [], ["--index-url http://i/simple", "six"], True),
    (["--no-index", "--find-links ./codeset/w", "six"], [],
     ["--no-index", "--find-links ./codeset/w", "six"], True),
    (["--extra-index-url http://e/simple", "--only-binary :all:", "six"], [],
     ["--extra-index-url http://e/simple", "--only-binary :all:", "six"], False),
]  # fmt: skip


@pytest.mark.parametrize(("lines", "args", "uv_lines", "own_index"), TABLE)
def test_each_option_reaches_uv_with_pips_meaning(lines, args, uv_lines, own_index):
    uv = uv_install(lines)
    assert uv.args == (STRATEGY, *args)
    assert list(uv.lines) == uv_lines
    assert uv.own_index is own_index


def test_the_index_url_comes_first_in_the_file_pip_reads(tmp_path):
    """pip drops the index URLs read before an `--index-url` line: sorted lines would put
    `--extra-index-url` first and lose it."""
    (tmp_path / "requirements.txt").write_text(
        "six\n--index-url http://i/simple\n--extra-index-url http://e/simple\n"
    )
    problems: list[str] = []
    read = reqs.read_requirements_file(tmp_path / "requirements.txt", tmp_path, problems)
    assert problems == []
    assert read.install_lines() == [
        "--index-url http://i/simple",
        "--extra-index-url http://e/simple",
        "six",
    ]


def test_the_install_script_passes_each_argument_line_whole_to_uv(tmp_path):
    """The uv path reads NAME.uv-args one argument a line, and
    NAME.uv; a file naming its own index gets none of the builder's (UV_INDEX_URL unset). A
    stand-in `uv` records what it is given: the real installs are in test_pip_meaning_e2e."""
    staging = tmp_path / "staging"
    staging.mkdir()
    for name in ("install-python-env.sh", "index-settings.sh"):
        (staging / name).write_bytes(recipe_file(name))
    files = set_files(
        RequirementSet(
            "requirements.txt", ("--index-url http://i/simple", "pkg --config-settings=x=y")
        )
    )
    for name, data in files.items():
        (staging / Path(name).name).write_bytes(data)
    log = tmp_path / "uv.log"
    (staging / "uv").write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = pip ]; then printf "%s|" "$@" "index=${{UV_INDEX_URL:-none}}" >> {log}; '
        f"echo >> {log}; exit 1; fi\nexit 0\n"
    )
    (staging / "uv").chmod(0o755)
    done = subprocess.run(
        ["sh", str(staging / "install-python-env.sh"), str(tmp_path / "venv"),
         "--no-compile-bytecode", "requirements.txt"],
        capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MLFLOW_STEPS_INDEX_SECRET": "",
             "PIP_INDEX_URL": "http://builder/simple", "MLFLOW_STEPS_PYTHON": "/usr/bin/python3"},
    )  # fmt: skip
    assert done.returncode != 0  # the stand-in fails the install: the script stops there
    (call,) = log.read_text().splitlines()
    # The install phase: no index at all, the download phase's wheels only.
    assert call.split("|")[:5] == ["pip", "install", "--offline", "--no-index", "--find-links"]
    assert call.split("|")[-6:] == [
        STRATEGY,
        "--config-settings-package=pkg:x=y",
        "-r",
        str(staging / "requirements.txt.uv"),
        "index=none",
        "",
    ]
    assert (staging / "requirements.txt.uv").read_text() == "--index-url http://i/simple\npkg\n"


def test_two_index_urls_are_refused_without_quoting_them(tmp_path):
    """pip keeps the last `--index-url` it reads (the line order the normal form drops), uv
    refuses a second one: one is kept, the others become --extra-index-url."""
    (tmp_path / "more.txt").write_text("--index-url http://u:token@second/simple\n")
    (tmp_path / "requirements.txt").write_text(
        "--index-url http://first/simple\n-r more.txt\nsix\n"
    )
    problems: list[str] = []
    reqs.read_requirements_file(tmp_path / "requirements.txt", tmp_path, problems)
    assert problems == [
        "requirements.txt: names 2 different --index-url values (with the files it includes); "
        "pip uses the last one it reads and uv refuses more than one: keep one and name the "
        "others with --extra-index-url"
    ]

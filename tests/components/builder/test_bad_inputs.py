"""Bad input: a clear message naming what is wrong and what to do, a non-zero exit, and no
output file written."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_steps.cli import main
from tests.support.flaky import Behaviour, FlakyServer
from tests.support.services import free_port

# A base given by digest is used as is, without a registry request: these tests reach the
# registry that is being tested.
PINNED_BASE = "python@sha256:" + "0" * 64

MAIN = "entry_points:\n  main:\n    command: python train.py\n"

# (case id, files of the codeset, expected fragments of the message)
CODESET_CASES = [
    ("no MLproject", {"requirements.txt": "six\n"}, ["no MLproject file"]),
    (
        "malformed MLproject",
        {"MLproject": "entry_points: [main\n", "requirements.txt": "six\n"},
        ["MLproject: not valid YAML at line", "fix the syntax"],
    ),
    (
        "MLproject not a mapping",
        {"MLproject": "- main\n", "requirements.txt": "six\n"},
        ["must be a YAML mapping"],
    ),
    (
        "no entry_points",
        {"MLproject": "name: x\n", "requirements.txt": "six\n"},
        ["no `entry_points`"],
    ),
    (
        "no main",
        {
            "MLproject": "entry_points:\n  train:\n    command: python t.py\n",
            "requirements.txt": "six\n",
        },
        ["no `main` entry point (found: train)"],
    ),
    (
        "no command",
        {"MLproject": "entry_points:\n  main:\n    parameters: {}\n", "requirements.txt": "six\n"},
        ["`command` is missing"],
    ),
    (
        "unknown MLproject key",
        {"MLproject": "conda: conda.yaml\n" + MAIN, "requirements.txt": "six\n"},
        ["unknown key(s) ['conda']"],
    ),
    (
        "named env file missing",
        {"MLproject": "conda_env: env.yaml\n" + MAIN},
        ["`conda_env` names env.yaml, which does not exist"],
    ),
    (
        "two env kinds",
        {"MLproject": "conda_env: c.yaml\npython_env: p.yaml\n" + MAIN},
        ["declares conda_env and python_env; keep only one"],
    ),
    ("no env file", {"MLproject": MAIN}, ["no environment file", "requirements.txt"]),
    (
        "empty requirements",
        {"MLproject": MAIN, "requirements.txt": "# nothing\n\n"},
        ["lists no packages"],
    ),
    (
        "invalid requirement",
        {"MLproject": MAIN, "requirements.txt": "six\nnumpy=>1.0\n"},
        ["requirements.txt line 2: `numpy=>1.0` is not a valid requirement"],
    ),
    (
        "editable install",
        {"MLproject": MAIN, "requirements.txt": "-e .\n"},
        ["editable install", "mounted at /project"],
    ),
    (
        "missing -r include",
        {"MLproject": MAIN, "requirements.txt": "-r base.txt\n"},
        ["base.txt: cannot be read"],
    ),
    (
        "conda without dependencies",
        {"MLproject": MAIN, "conda.yaml": "name: e\nchannels: [x]\n"},
        ["`dependencies` must be a non-empty list"],
    ),
    (
        "malformed conda.yaml",
        {"MLproject": MAIN, "conda.yaml": "dependencies: [a\n"},
        ["conda.yaml: not valid YAML"],
    ),
    (
        "python_env with python as a number",
        {"MLproject": MAIN, "python_env.yaml": "python: 3.10\ndependencies: [six]\n"},
        ["`python: 3.1` is a number", 'python: "3.1"'],
    ),
    (
        "docker_env without image",
        {"MLproject": "docker_env: {}\n" + MAIN},
        ["`docker_env` needs an `image`"],
    ),
    (
        "every problem at once",
        {"MLproject": "entry_points:\n  train:\n    command: x\n", "requirements.txt": "\n"},
        ["2 problems", "no `main` entry point", "lists no packages"],
    ),
]


def make_codeset(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize(
    ("case", "files", "fragments"), CODESET_CASES, ids=[c[0] for c in CODESET_CASES]
)
@pytest.mark.parametrize("command", ["inspect", "build"])
def test_bad_codeset(tmp_path, capsys, case, files, fragments, command):
    codeset = make_codeset(tmp_path / "codeset", files)
    output = tmp_path / "out" / "image"
    argv = [command, str(codeset)]
    if command == "build":
        argv += ["--registry", f"127.0.0.1:{free_port()}", "--insecure", "--output", str(output)]
    code, err = run_cli(argv, capsys)
    assert code != 0
    for fragment in fragments:
        assert fragment in err
    assert not output.exists() and not output.parent.exists()


def test_codeset_path_is_not_a_directory(tmp_path, capsys):
    code, err = run_cli(["inspect", str(tmp_path / "missing")], capsys)
    assert code != 0 and "not a directory" in err


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"FUSEML_VERBOSE": "maybe"}, "FUSEML_VERBOSE: `maybe` is not a boolean"),
        ({"FUSEML_ENGINE": "bazel"}, "FUSEML_ENGINE: `bazel` is not one of auto, none, kaniko"),
    ],
)
def test_bad_step_inputs(tmp_path, capsys, monkeypatch, env, fragment):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    codeset = make_codeset(tmp_path / "c", {"MLproject": MAIN, "requirements.txt": "six\n"})
    code, err = run_cli(["build", str(codeset), "--output", str(tmp_path / "o")], capsys)
    assert code != 0 and fragment in err and not (tmp_path / "o").exists()


def test_unreachable_registry(tmp_path, capsys):
    codeset = make_codeset(tmp_path / "c", {"MLproject": MAIN, "requirements.txt": "six\n"})
    code, err = run_cli(
        [
            "build",
            str(codeset),
            "--registry",
            f"127.0.0.1:{free_port()}",
            "--insecure",
            "--base-image",
            PINNED_BASE,
            "--output",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert code != 0 and "cannot connect" in err and not (tmp_path / "o").exists()


def test_registry_requiring_auth(auth_registry, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(var, raising=False)
    codeset = make_codeset(tmp_path / "c", {"MLproject": MAIN, "requirements.txt": "six\n"})
    code, err = run_cli(
        [
            "build",
            str(codeset),
            "--registry",
            auth_registry.host,
            "--insecure",
            "--base-image",
            PINNED_BASE,
            "--output",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert code != 0 and "requires authentication" in err and not (tmp_path / "o").exists()


def test_registry_failing_with_5xx(tmp_path, capsys):
    codeset = make_codeset(tmp_path / "c", {"MLproject": MAIN, "requirements.txt": "six\n"})
    with FlakyServer(Behaviour(fail_first=1000, fail_status=500)) as server:
        code, err = run_cli(
            [
                "build",
                str(codeset),
                "--registry",
                server.host,
                "--insecure",
                "--base-image",
                PINNED_BASE,
                "--output",
                str(tmp_path / "o"),
            ],
            capsys,
        )
    assert code != 0 and "HTTP 500 after" in err and not (tmp_path / "o").exists()


def test_engine_not_installed(tmp_path, capsys, registry, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    codeset = make_codeset(tmp_path / "c", {"MLproject": MAIN, "requirements.txt": "six\n"})
    code, err = run_cli(
        [
            "build",
            str(codeset),
            "--registry",
            registry.host,
            "--insecure",
            "--engine",
            "podman",
            "--base-image",
            PINNED_BASE,
            "--output",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert code != 0 and "`podman` is not installed here" in err
    assert not (tmp_path / "o").exists()

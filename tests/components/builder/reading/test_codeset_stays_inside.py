"""A codeset never makes the builder read outside itself (issue 14, item 6): every file it
opens (MLproject, the environment file, each -r/-c include, each path requirement) must resolve
inside the codeset, after symlinks. `inspect`, `build` and `run` (local engine) refuse the
codeset, name the path, and print nothing of the file: a fake registry credential sits next
to the codeset and no output may contain it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_steps.cli import main

MAIN = "entry_points:\n  main:\n    command: python train.py\n"
TOKEN = "c2VjcmV0LXJlZ2lzdHJ5LXRva2Vu"
CREDENTIAL = '{"auths": {"registry.example": {"auth": "' + TOKEN + '"}}}\n'


def symlink(target: str):
    return ("symlink", target)


# case -> (codeset files: text, or symlink(target relative to the codeset), the path named)
CASES = {
    "requirements.txt is a symlink out": (
        {"MLproject": MAIN, "requirements.txt": symlink("../credential.json")},
        "requirements.txt is (or passes through) a symbolic link to",
    ),
    "-r with ..": (
        {"MLproject": MAIN, "requirements.txt": "six\n-r ../credential.json\n"},
        "names ../credential.json, which leads to",
    ),
    "-r of an absolute path": (
        {"MLproject": MAIN, "requirements.txt": "-r {outside}/credential.json\n"},
        "credential.json, which is an absolute path",
    ),
    "-c with ..": (
        {"MLproject": MAIN, "requirements.txt": "six\n-c ../credential.json\n"},
        "names ../credential.json, which leads to",
    ),
    "-r through a symlinked folder": (
        {"MLproject": MAIN, "requirements.txt": "-r shared/credential.json\n",
         "shared": symlink("..")},
        "names shared/credential.json, which is (or passes through) a symbolic link",
    ),
    "path requirement with ..": (
        {"MLproject": MAIN, "requirements.txt": "../credential.json\n"},
        "names ../credential.json, which leads to",
    ),
    "MLproject is a symlink out": (
        {"MLproject": symlink("../credential.json"), "requirements.txt": "six\n"},
        "MLproject is (or passes through) a symbolic link to",
    ),
    "conda.yaml is a symlink out": (
        {"MLproject": MAIN, "conda.yaml": symlink("../credential.json")},
        "conda.yaml is (or passes through) a symbolic link to",
    ),
    "conda_env names a file outside": (
        {"MLproject": "conda_env: ../credential.json\n" + MAIN},
        "`conda_env: ../credential.json` leads to",
    ),
    "python_env.yaml includes a file outside": (
        {"MLproject": MAIN, "python_env.yaml": "dependencies: [six, -r ../credential.json]\n"},
        "python_env.yaml dependencies line 2: `-r ../credential.json` names ../credential.json",
    ),
    "conda.yaml pip: constraint outside": (
        {"MLproject": MAIN, "conda.yaml": "dependencies:\n  - pip:\n    - -c ../credential.json\n"},
        "conda.yaml pip line 1: `-c ../credential.json` names",
    ),
}  # fmt: skip


def make(tmp_path: Path, files: dict) -> Path:
    (tmp_path / "credential.json").write_text(CREDENTIAL)
    root = tmp_path / "codeset"
    root.mkdir()
    for name, value in files.items():
        if isinstance(value, tuple):
            (root / name).symlink_to(value[1])
        else:
            (root / name).write_text(value.replace("{outside}", str(tmp_path)))
    return root


COMMANDS = {
    "inspect": [],
    "build": ["--registry", "127.0.0.1:9", "--insecure"],
    "run": ["--engine", "local"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_codeset_that_reads_outside_itself_is_refused_without_its_content(
    tmp_path, capsys, monkeypatch, case, command
):
    files, named = CASES[case]
    root = make(tmp_path, files)
    monkeypatch.setenv("MLFLOW_STEPS_ENV_CACHE", str(tmp_path / "envs"))
    code = main([command, str(root), *COMMANDS[command]])
    out = capsys.readouterr()
    assert code != 0
    assert named in out.err
    assert "outside the codeset" in out.err
    for output in (out.out, out.err):
        assert TOKEN not in output and "auths" not in output
    assert not (tmp_path / "envs").exists()


def test_a_symlink_that_stays_inside_the_codeset_is_read(tmp_path, capsys):
    root = make(tmp_path, {"MLproject": MAIN, "real.txt": "six==1.16.0\n"})
    (root / "requirements.txt").symlink_to("real.txt")
    assert main(["inspect", str(root)]) == 0
    assert "environment:  pip (requirements.txt)" in capsys.readouterr().out

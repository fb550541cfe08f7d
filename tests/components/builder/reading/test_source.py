"""The codeset's git source, read from `.git` without git (the builder image has none): checked
against what real git says about checkouts it made."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mlflow_steps.components.builder.reading.source import Source, codeset_source, public_url

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
        "HOME": str(cwd),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def checkout(tmp_path) -> Path:
    root = tmp_path / "repo"
    (root / "projects" / "wine").mkdir(parents=True)
    (root / "projects" / "wine" / "MLproject").write_text("name: wine\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    git(root, "remote", "add", "origin", "https://alice:s3cret@git.example.org/ml/wine.git")
    return root


def test_a_codeset_two_folders_down_names_the_commit_and_the_remote_without_credentials(
    checkout,
):
    found = codeset_source(checkout / "projects" / "wine")
    commit = git(checkout, "rev-parse", "HEAD")
    assert found == Source("git+https://git.example.org/ml/wine.git", f"sha1:{commit}")
    assert "s3cret" not in json.dumps(found.as_object())


def test_packed_refs_and_a_detached_head(checkout):
    first = git(checkout, "rev-parse", "HEAD")
    (checkout / "more.txt").write_text("x")
    git(checkout, "add", ".")
    git(checkout, "commit", "-q", "-m", "second")
    second = git(checkout, "rev-parse", "HEAD")
    git(checkout, "pack-refs", "--all")
    assert not (checkout / ".git/refs/heads/main").exists()
    assert codeset_source(checkout).digest == f"sha1:{second}"
    git(checkout, "checkout", "-q", first)
    assert codeset_source(checkout).digest == f"sha1:{first}"


def test_a_linked_worktree_reads_the_main_checkout_s_refs_and_remote(checkout, tmp_path):
    other = tmp_path / "other"
    git(checkout, "worktree", "add", "-q", "-b", "side", str(other))
    assert (other / ".git").is_file()
    found = codeset_source(other)
    assert found.digest == f"sha1:{git(other, 'rev-parse', 'HEAD')}"
    assert found.uri == "git+https://git.example.org/ml/wine.git"


def test_no_checkout_no_remote_or_no_commit_gives_empty(tmp_path, checkout):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert codeset_source(plain) == Source()
    git(checkout, "remote", "remove", "origin")
    assert codeset_source(checkout) == Source()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    git(fresh, "init", "-q")
    git(fresh, "remote", "add", "origin", "https://git.example.org/x.git")
    assert codeset_source(fresh) == Source()


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("https://u:tok@host/a.git", "https://host/a.git"),
        ("git@github.com:org/repo.git", "ssh://github.com/org/repo.git"),
        ("ssh://git@host:2222/a.git", "ssh://host:2222/a.git"),
        ("/srv/git/a.git", ""),
    ],
)
def test_public_url(url, public):
    assert public_url(url) == public


def test_build_flags_write_the_source_as_json_and_field_by_field(checkout, tmp_path):
    """`mlflow-steps build`'s source flags, parsed by its own parser (a whole build runs in
    tests/generators/test_wiring.py)."""
    from mlflow_steps.cli import make_parser, write_source

    out = tmp_path / "out"
    out.mkdir()
    args = make_parser().parse_args(
        [
            "build",
            str(checkout),
            "--source-output",
            str(out / "source.json"),
            "--source-uri-output",
            str(out / "uri"),
            "--source-digest-output",
            str(out / "digest"),
        ]
    )
    write_source(args, checkout)
    commit = git(checkout, "rev-parse", "HEAD")
    assert json.loads((out / "source.json").read_text()) == {
        "uri": "git+https://git.example.org/ml/wine.git",
        "digest": f"sha1:{commit}",
    }
    assert (out / "uri").read_text() == "git+https://git.example.org/ml/wine.git"
    assert (out / "digest").read_text() == f"sha1:{commit}"

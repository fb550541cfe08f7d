"""Index settings split into what may be seen (the tag, logs) and what may not (credentials)."""

from __future__ import annotations

import stat

import pytest

from mlflow_steps.components.builder.planning.indexes import (
    NETRC_ENV,
    SECRET_ID,
    index_settings,
    parse_netrc,
    secret_files,
)
from mlflow_steps.components.problems import StepError

NO_NETRC = {"NETRC": "/nonexistent/netrc"}


def test_userinfo_leaves_the_url_and_comes_back_for_the_install_step_only():
    index = index_settings(
        "https://ci:t%40k3n@pypi.example:8443/simple/",
        "https://extra.example/simple/  https://:only-token@third.example/simple/",
        "pypi.example",
        NO_NETRC,
    )
    assert index.public() == {
        "PIP_INDEX_URL": "https://pypi.example:8443/simple/",
        "PIP_EXTRA_INDEX_URL": "https://extra.example/simple/ https://third.example/simple/",
        "PIP_TRUSTED_HOST": "pypi.example",
    }
    assert index.install_env() == {
        "PIP_INDEX_URL": "https://ci:t%40k3n@pypi.example:8443/simple/",
        "PIP_EXTRA_INDEX_URL": "https://extra.example/simple/ https://:only-token@third.example/simple/",
        "PIP_TRUSTED_HOST": "pypi.example",
    }
    assert "t@k3n" not in repr(index) and "only-token" not in repr(index)
    masked = index.mask(f"x {index.install_env()['PIP_INDEX_URL']} t@k3n only-token")
    assert "t%40k3n" not in masked and "t@k3n" not in masked and "only-token" not in masked


def test_two_credentials_for_one_index_give_the_same_public_settings():
    one = index_settings("http://alice:one@idx.local/simple/", "", "", NO_NETRC)
    two = index_settings("http://bob:two@idx.local/simple/", "", "", NO_NETRC)
    assert one.public() == two.public() and one == two  # credentials do not compare
    assert one.install_env() != two.install_env()


def test_credentials_from_the_netrc_in_the_environment_and_from_the_netrc_file(tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine idx.local login file-user password file-pass\n")
    environ = {
        "NETRC": str(netrc),
        NETRC_ENV: "# from a Kubernetes Secret\nmachine other.local\n  login u\n  password 'p w'\n",
    }
    index = index_settings(
        "http://idx.local:8080/simple/", "http://other.local/simple/", "", environ
    )
    assert index.public()["PIP_INDEX_URL"] == "http://idx.local:8080/simple/"
    assert index.install_env() == {
        "PIP_INDEX_URL": "http://file-user:file-pass@idx.local:8080/simple/",
        "PIP_EXTRA_INDEX_URL": "http://u:p%20w@other.local/simple/",
    }
    # The URL's own user information wins over any netrc entry.
    given = index_settings("http://me:mine@idx.local/simple/", "", "", environ)
    assert given.install_env()["PIP_INDEX_URL"] == "http://me:mine@idx.local/simple/"


def test_default_entry_and_no_credentials():
    environ = {**NO_NETRC, NETRC_ENV: "default login d password dp"}
    index = index_settings("http://a.example/simple/", "", "", environ)
    assert index.install_env()["PIP_INDEX_URL"] == "http://d:dp@a.example/simple/"
    plain = index_settings("http://a.example/simple/", "", "", NO_NETRC)
    assert plain.install_env() == plain.public() and plain.secret_values() == []
    assert index_settings("", "", "", environ).public() == {}


def test_a_urls_credentials_go_to_its_origin_alone():
    """A password given in one URL never reaches another port or scheme of its host."""
    index = index_settings(
        "https://u:pw@private.example/simple/", "http://private.example:9999/evil/", "", NO_NETRC
    )
    assert index.install_env() == {
        "PIP_INDEX_URL": "https://u:pw@private.example/simple/",
        "PIP_EXTRA_INDEX_URL": "http://private.example:9999/evil/",
    }


def test_bad_netrc_text_is_named_without_its_content():
    with pytest.raises(StepError, match="MLFLOW_STEPS_INDEX_NETRC: unexpected token") as info:
        parse_netrc("machine h login u passw0rd hunter2", NETRC_ENV)
    assert "hunter2" not in str(info.value) and "passw0rd" not in str(info.value)
    with pytest.raises(StepError, match="`password` must follow `machine HOST`"):
        parse_netrc("password hunter2", NETRC_ENV)
    assert parse_netrc("machine h login u password p macdef init\nx\n", "f") == {"h": ("u", "p")}


def test_secret_file_is_private_and_gone_afterwards(tmp_path):
    index = index_settings("http://u:pw@idx.local/simple/", "", "idx.local", NO_NETRC)
    with secret_files(index, str(tmp_path)) as files:
        path = files[SECRET_ID]
        assert path.parent.parent == tmp_path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text() == (
            "PIP_INDEX_URL=http://u:pw@idx.local/simple/\nPIP_TRUSTED_HOST=idx.local\n"
        )
    assert not path.exists() and not path.parent.exists()
    with secret_files(index_settings("", "", "", NO_NETRC)) as none:
        assert none == {}


def test_engine_output_is_masked_on_both_streams_and_goes_to_stderr(tmp_path, capsys):
    """An installer that echoes a URL (uv does, for one it cannot parse) prints no token."""
    from mlflow_steps.components.builder import build
    from mlflow_steps.components.builder.backends import engines

    index = index_settings("http://u:t%2Fok@idx.local/simple/", "", "", NO_NETRC)
    job = engines.BuildJob(
        tmp_path / "Dockerfile",
        tmp_path,
        "r/x:t",
        tmp_path / "d",
        masked=tuple(index.secret_values()),
    )
    url = index.install_env()["PIP_INDEX_URL"]
    script = f"echo 'out {url}'; echo 'err {url} t/ok' >&2"
    build.run(engines.Command(["sh", "-c", script]), job, "buildah")
    printed = capsys.readouterr()
    assert printed.out == ""  # stdout carries the step's output only
    lines = sorted(printed.err.splitlines())
    assert lines == ["err http://u:***@idx.local/simple/ ***", "out http://u:***@idx.local/simple/"]
    digest = engines.Command(["sh", "-c", f"echo x@sha256:1 {url}"], prints_digest=True)
    assert build.run(digest, job, "docker") == "x@sha256:1 http://u:***@idx.local/simple/\n"

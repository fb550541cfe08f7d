"""A netrc `default` entry reaches only the indexes the user configured (issue 23, item 1 of
the trust gaps). pip (26.3, `network/auth.py` through requests' `get_netrc_auth`) and uv would
send it to any host; the builder applies it to its own `pip_index_url`/`pip_extra_index_url`
inputs and hands pip and uv no netrc, so a host only the codeset names (an
`--extra-index-url` line, a direct reference) never gets it. Real parts: pypiserver with
htpasswd as the configured index, whose password comes from the `default` entry of
MLFLOW_STEPS_INDEX_NETRC; the local engine's two phases and uv's resolution; a recording HTTP
server as the codeset's host, answering 401 with a Basic challenge so that pip and uv look for
credentials (a real index cannot record the headers it gets). `default` entries with other
passwords sit in ~/.netrc and $NETRC too; none may reach it."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import pytest

from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.builder.planning.plan import recipe_file
from mlflow_steps.components.builder.planning.resolution import resolve
from mlflow_steps.components.launcher.local_env import run_phases
from mlflow_steps.components.problems import StepError
from tests.components.builder.oci.test_http_hygiene import Recorder, headers_text
from tests.conftest import INDEX_USERS

FILE_PASSWORD = "netrc-file-default-pa55"
ENV_FILE_PASSWORD = "netrc-env-file-default-pa55"


@pytest.fixture
def defaults(tmp_path, monkeypatch):
    """`default` entries everywhere a netrc is read: MLFLOW_STEPS_INDEX_NETRC (alice, the
    configured index's real user), ~/.netrc and $NETRC (others)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text(f"default login mallory password {FILE_PASSWORD}\n")
    (home / ".netrc").chmod(0o600)
    named = tmp_path / "named-netrc"
    named.write_text(f"default login trent password {ENV_FILE_PASSWORD}\n")
    named.chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETRC", str(named))
    monkeypatch.setenv(
        "MLFLOW_STEPS_INDEX_NETRC", f"default login alice password {INDEX_USERS['alice']}"
    )


@pytest.fixture
def codeset_host():
    recorder = Recorder(auth=True)
    yield recorder
    recorder.stop()


def no_credentials_reached(recorder: Recorder) -> None:
    assert recorder.seen, "the codeset's host was never asked: the test proves nothing"
    assert all("Authorization" not in headers for _, _, headers in recorder.seen)
    text = headers_text(recorder.seen)
    for login, password in (("alice", INDEX_USERS["alice"]), ("mallory", FILE_PASSWORD),
                            ("trent", ENV_FILE_PASSWORD)):  # fmt: skip
        assert password not in text
        assert base64.b64encode(f"{login}:{password}".encode()).decode() not in text


def stage(staging: Path, requirements: str) -> None:
    staging.mkdir()
    for name in ("download-python-env.sh", "fetch-sdists.py", "install-python-env.sh",
                 "index-settings.sh", "compile-bytecode.py", "check-libraries.py"):  # fmt: skip
        (staging / name).write_bytes(recipe_file(name))
    (staging / "requirements.txt").write_text(requirements)


def test_the_default_entry_serves_the_configured_index_and_no_extra_index_of_the_codeset(
    auth_index, defaults, codeset_host, tmp_path
):
    """The local engine's phases: six comes from the configured index (401 to anonymous), with
    alice's password from the `default` entry; the codeset's `--extra-index-url` host is asked
    for six too, and gets no credential."""
    options = BuildOptions(pip_index_url=auth_index.extra["url"])
    assert options.index().credentials  # the `default` entry applies to the configured index
    staging = tmp_path / "staging"
    extra = f"http://{codeset_host.host}/simple/"
    stage(staging, f"--extra-index-url {extra}\nsix==1.17.0\n")
    done = run_phases(staging, options, sys.executable, str(tmp_path / "runtime"),
                      str(tmp_path / "venv"), "--compile-bytecode", ["requirements.txt"],
                      home=str(tmp_path / "empty-home"))  # fmt: skip
    assert done.returncode == 0, done.said()
    assert list((tmp_path / "venv").glob("lib/python3*/site-packages/six.py"))
    no_credentials_reached(codeset_host)
    assert INDEX_USERS["alice"] not in done.said()


def test_a_direct_reference_to_the_codesets_host_gets_no_credential(
    auth_index, defaults, codeset_host, tmp_path
):
    options = BuildOptions(pip_index_url=auth_index.extra["url"])
    staging = tmp_path / "staging"
    stage(staging, f"evilpkg @ http://{codeset_host.host}/evilpkg-1.0-py3-none-any.whl\n")
    done = run_phases(staging, options, sys.executable, str(tmp_path / "runtime"),
                      str(tmp_path / "venv"), "--compile-bytecode", ["requirements.txt"],
                      home=str(tmp_path / "empty-home"))  # fmt: skip
    assert done.returncode != 0  # the host wants credentials it is never given
    no_credentials_reached(codeset_host)


def test_resolution_sends_the_default_entry_to_the_configured_index_only(
    auth_index, defaults, codeset_host
):
    """uv's no-build resolution (`resolve`, the per-package path's first step), with the index
    settings the `default` entry filled in."""
    options = BuildOptions(pip_index_url=auth_index.extra["url"])
    lines = [f"--extra-index-url http://{codeset_host.host}/simple/", "six==1.17.0"]
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    try:
        resolved = resolve(lines, version, options.index().install_env(), {})
    except StepError as exc:  # uv may stop at the 401; what matters is what the host got
        assert INDEX_USERS["alice"] not in str(exc)
    else:
        assert [d.name for d in resolved.distributions] == ["six"]
    no_credentials_reached(codeset_host)

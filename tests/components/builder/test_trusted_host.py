"""A codeset may not say `--trusted-host` (issue 23, F7): pip takes it to mean plain HTTP and
no TLS certificate check for every index and link on that host, credentials included. Only the
user's own `pip_trusted_host` input may do that. Real parts: pypiserver with htpasswd (gunicorn's
access log on) as the configured index, a real registry, the CLI as a step runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import services
from tests.support.builds import local_build_argv
from tests.support.images import BUILDAH_ENV, wheelhouse
from tests.support.require import require_tools

CASES = Path(__file__).resolve().parents[2] / "cases"
PASSWORD = "tru5ted-pa55"


@pytest.fixture
def logged_auth_index(tmp_path):
    """The test wheelhouse behind pypiserver with htpasswd, with gunicorn's access log on."""
    require_tools("htpasswd")
    service = services.start_logged_index(wheelhouse(), tmp_path / "index", PASSWORD)
    yield service
    service.stop()


@pytest.mark.parametrize("form", ["--trusted-host {host}", "--trusted-host={host}",
                                  "--trusted {host}"])  # fmt: skip
@pytest.mark.e2e
def test_a_codeset_trusted_host_is_refused_before_any_request(
    registry, logged_auth_index, tmp_path, form
):
    """On main the line was kept and handed to pip (`--allow-insecure-host` to uv) with the
    index credentials; now inspect and build refuse it, naming the line and what to do, and
    neither the index nor the registry is asked anything."""
    host = logged_auth_index.host.partition(":")[0]
    codeset = tmp_path / "trusting"
    shutil.copytree(CASES / "requirements-pre", codeset)
    line = form.format(host=host)
    (codeset / "requirements.txt").write_text(f"{line}\nsix==1.16.0\n")
    url = logged_auth_index.extra["url"].replace("http://", f"http://alice:{PASSWORD}@")
    inspected = subprocess.run(
        [sys.executable, "-m", "mlflow_steps", "inspect", str(codeset), "--pip-index-url", url],
        capture_output=True, text=True,
    )  # fmt: skip
    assert inspected.returncode != 0
    said = inspected.stderr
    assert f"requirements.txt line 1: `{line}` marks {host} as a trusted host" in said
    assert "--pip-trusted-host" in said and "Remove the line" in said
    since = len(registry.requests_seen())
    out = tmp_path / "image.txt"
    argv = local_build_argv(codeset, registry.host, base=f"{registry.host}/base/python:3.11",
                            index_url=url, repository="trusted/refused", output=out)  # fmt: skip
    built = subprocess.run([*argv, "--layering=single"], capture_output=True, text=True,
                           env=BUILDAH_ENV)  # fmt: skip
    assert built.returncode != 0 and "marks" in built.stderr and "trusted host" in built.stderr
    assert PASSWORD not in built.stderr + built.stdout + said
    assert registry.requests_seen()[since:] == []
    assert services.index_requests(logged_auth_index) == []
    assert not out.exists()


def test_plain_http_on_the_host_of_an_https_index_is_refused(tmp_path):
    """pip keeps an index's credentials per host[:port] without the scheme (pip 26.3
    `network/auth.py`, `passwords[netloc]`) and fetches a direct reference from any origin, so
    a codeset's `http://HOST/x.whl` on the host of your https index would get its credentials
    unencrypted. On main, inspect passed it; now it names the URL. Your own
    `--pip-trusted-host HOST` (and only that) allows it."""
    codeset = tmp_path / "plain"
    shutil.copytree(CASES / "requirements-pre", codeset)
    (codeset / "requirements.txt").write_text(
        "x @ http://idx.example/files/x-1.0-py3-none-any.whl\n"
        "--find-links http://idx.example:8443/wheels/\n"
        "y @ http://elsewhere.example/y-1.0-py3-none-any.whl\n"
    )
    argv = [sys.executable, "-m", "mlflow_steps", "inspect", str(codeset),
            "--pip-index-url", f"https://alice:{PASSWORD}@idx.example/simple/",
            "--pip-extra-index-url", "https://idx.example:8443/simple/"]  # fmt: skip
    refused = subprocess.run(argv, capture_output=True, text=True)
    assert refused.returncode != 0
    said = refused.stderr
    assert "names http://idx.example/files/x-1.0-py3-none-any.whl, plain HTTP" in said
    assert "names http://idx.example:8443/wheels/, plain HTTP" in said
    assert "elsewhere.example" not in said  # another host never had the credentials
    assert PASSWORD not in said
    trusted = subprocess.run([*argv, "--pip-trusted-host", "idx.example"], capture_output=True,
                             text=True)  # fmt: skip
    assert "plain HTTP" not in trusted.stderr


def test_plain_http_in_any_case_or_in_a_constraints_file_is_refused(tmp_path):
    """pip and requests lower a URL's scheme (`HTTP://h/x` is fetched as `http://h/x`), and pip
    reads a `-c` constraints file's options as the requirements file's: both spellings reached
    the https index's host in clear text past the first check (found by this round's attack
    review). Each is named now."""
    codeset = tmp_path / "plain"
    shutil.copytree(CASES / "requirements-pre", codeset)
    (codeset / "requirements.txt").write_text(
        "x @ HTTP://idx.example/files/x-1.0-py3-none-any.whl\n-c c.txt\n"
    )
    (codeset / "c.txt").write_text("--extra-index-url Http://idx.example/other/\n")
    argv = [sys.executable, "-m", "mlflow_steps", "inspect", str(codeset),
            "--pip-index-url", f"https://alice:{PASSWORD}@idx.example/simple/"]  # fmt: skip
    refused = subprocess.run(argv, capture_output=True, text=True)
    assert refused.returncode != 0, refused.stderr
    assert "names HTTP://idx.example/files/x-1.0-py3-none-any.whl, plain HTTP" in refused.stderr
    assert "constraints.txt: names Http://idx.example/other/, plain HTTP" in refused.stderr
    assert PASSWORD not in refused.stderr

"""Pure-Python wheels installed by the builder itself: a wheel made here (a module, a console
script, a data file), served by a real HTTP server on loopback that asks for credentials,
installed with pypa/installer into a staged root, compiled for this interpreter's minor
version with the recipe's compile-bytecode.py; hash and content refusals."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import marshal
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from mlflow_steps.components.builder.backends.layered import host_install
from mlflow_steps.components.builder.backends.layered.installed import split
from mlflow_steps.components.builder.backends.layered.wheels import Pin
from mlflow_steps.components.builder.planning.indexes import IndexSettings, origin_of
from mlflow_steps.components.builder.planning.plan import recipe_file
from mlflow_steps.components.problems import StepError

VENV = "/opt/mlflow-env"
MINOR = sys.version_info[:2]
SITE = "{}/lib/python{}.{}/site-packages".format(VENV, *MINOR)
COMPILER = recipe_file("compile-bytecode.py")
LOGIN, TOKEN = "builder", "s3cr3t-t0ken"


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(folder: Path, name: str = "tool", extra: dict[str, bytes] | None = None) -> Path:
    info = f"{name}-1.0.dist-info"
    files = {
        f"{name}/__init__.py": b"def main():\n    print('hello')\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
        f"{info}/entry_points.txt": f"[console_scripts]\n{name} = {name}:main\n".encode(),
        f"{name}-1.0.data/data/share/{name}/notes.txt": b"notes\n",
        **(extra or {}),
    }
    lines = [record_line(path, data) for path, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(lines) + "\n").encode()
    out = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return out


@pytest.fixture
def served(tmp_path):
    """An HTTP server for tmp_path/www that answers 401 without the right basic credentials."""
    www = tmp_path / "www"
    www.mkdir()
    expected = "Basic " + base64.b64encode(f"{LOGIN}:{TOKEN}".encode()).decode()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(www), **kwargs)

        def do_GET(self):
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield www, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def pin_for(wheel: Path, url: str, sha256: str | None = None) -> Pin:
    digest = sha256 or hashlib.sha256(wheel.read_bytes()).hexdigest()
    return Pin("tool", "1.0", f"{url}/{wheel.name}", digest, None, True)


def index_for(url: str) -> IndexSettings:
    # Plain http: the host is named trusted, or no credential is sent (index_credentials).
    return IndexSettings(
        f"{url}/simple/", trusted_hosts="127.0.0.1", credentials={origin_of(url): (LOGIN, TOKEN)}
    )


def test_a_pure_wheel_is_installed_like_into_the_venv_and_compiled_for_its_image_path(
    served, tmp_path
):
    www, url = served
    pin = pin_for(make_wheel(www), url)
    assert host_install.is_pure(pin)
    root = tmp_path / "root"
    refused = host_install.install_pure([pin], root, VENV, SITE, MINOR, index_for(url), COMPILER)
    assert refused == []
    script = root / VENV.lstrip("/") / "bin" / "tool"
    assert script.read_text().splitlines()[0] == f"#!{VENV}/bin/python"
    assert script.stat().st_mode & 0o111
    assert (root / VENV.lstrip("/") / "share/tool/notes.txt").read_text() == "notes\n"
    site = root / SITE.lstrip("/")
    assert (site / "tool-1.0.dist-info/INSTALLER").read_bytes() == host_install.INSTALLER
    cached = site / "tool/__pycache__" / "__init__.cpython-{}{}.pyc".format(*MINOR)
    code = marshal.loads(cached.read_bytes()[16:])
    assert code.co_filename == f"{SITE}/tool/__init__.py"  # the path in the image
    # Every file is claimed by the distribution (RECORD plus bytecode): no stray skeleton.
    claimed, rest = split(root, VENV, SITE, "cpython-{}{}".format(*MINOR))
    assert set(claimed) == {"tool"} and rest == []
    assert (
        f"{VENV}/bin/tool" in claimed["tool"] and str(cached)[len(str(root)) :] in (claimed["tool"])
    )


def test_a_wheel_that_does_not_match_the_lock_is_refused(served, tmp_path):
    www, url = served
    pin = pin_for(make_wheel(www), url, sha256="0" * 64)
    with pytest.raises(StepError, match="does not match the lock's sha256"):
        host_install.install_pure([pin], tmp_path / "r", VENV, SITE, MINOR, index_for(url), None)
    assert not (tmp_path / "r").exists()


def test_without_credentials_the_index_refuses_and_the_error_names_no_secret(served, tmp_path):
    www, url = served
    pin = pin_for(make_wheel(www), url)
    with pytest.raises(StepError, match="answered 401") as raised:
        host_install.install_pure([pin], tmp_path / "r", VENV, SITE, MINOR,
                                  IndexSettings(f"{url}/simple/"), None)  # fmt: skip
    assert TOKEN not in str(raised.value)


def test_a_none_any_wheel_with_a_shared_library_is_handed_back(served, tmp_path):
    www, url = served
    pin = pin_for(make_wheel(www, extra={"tool/_speed.cpython-311-x86_64-linux-gnu.so": b"x"}), url)
    refused = host_install.install_pure([pin], tmp_path / "r", VENV, SITE, MINOR, index_for(url),
                                        None)  # fmt: skip
    assert refused == [pin]


@pytest.mark.parametrize(
    ("name", "pure"),
    [
        ("six-1.17.0-py2.py3-none-any.whl", True),
        ("numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.whl", False),
        ("cffi-1.0-cp311-abi3-manylinux_2_17_x86_64.whl", False),
        ("odd-1.0-py3-none-linux_x86_64.whl", False),
    ],
)
def test_only_none_any_wheels_are_pure(name, pure):
    assert host_install.is_pure(Pin("x", "1", f"http://h/{name}", "ab", None, False)) is pure
    assert not host_install.is_pure(Pin("x", "1", None, "ab", None, False))


def test_finding_an_interpreter_never_runs_a_codesets_venv(tmp_path, monkeypatch):
    """uv runs each interpreter it considers; a `.venv` in the working folder (a step's working
    folder is the codeset) is never considered."""
    marker = tmp_path / "ran"
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f'#!/bin/sh\ntouch {marker}\nexec python3 "$@"\n')
    (bin_dir / "python").chmod(0o755)
    (tmp_path / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\nversion_info = 3.99.0\n")
    monkeypatch.chdir(tmp_path)
    host_install.interpreter_for((3, 99))
    host_install.interpreter_for((3, 98))
    assert not marker.exists()


def test_a_file_two_wheels_write_is_compiled_from_what_was_written_last(tmp_path):
    """The Compiler compiles each wheel's files as they come; a file added again (a second
    wheel wrote it) is compiled once more at the end, from its last content."""
    root = tmp_path / "root"
    module = root / SITE.lstrip("/") / "shared.py"
    module.parent.mkdir(parents=True)
    module.write_text("WHO = 'first'\n")
    with host_install.Compiler(root, SITE, MINOR, COMPILER, None, tmp_path) as compiler:
        compiler.add([f"{SITE}/shared.py", f"{VENV}/bin/tool"])
        module.write_text("WHO = 'second'\n")
        compiler.add([f"{SITE}/shared.py"])
    pyc = module.parent / "__pycache__" / f"shared.{sys.implementation.cache_tag}.pyc"
    namespace: dict = {}
    exec(marshal.loads(pyc.read_bytes()[16:]), namespace)
    assert namespace["WHO"] == "second"


def test_a_compiler_that_fails_says_why(tmp_path):
    failing = host_install.Compiler(tmp_path, SITE, MINOR, b"raise SystemExit('boom')", None,
                                    tmp_path)  # fmt: skip
    with pytest.raises(StepError, match=r"compiling bytecode failed: .*boom"), failing:
        pass


SITE_PY = "/opt/mlflow-env/lib/python3.13/site-packages/pkg/__init__.py"
SITE_PYC = "/opt/mlflow-env/lib/python3.13/site-packages/pkg/__pycache__/__init__.cpython-313.pyc"


def records(*items: tuple[str, bytes]) -> io.BufferedReader:
    data = b"".join(n.encode() + b"\0" + str(len(d)).encode() + b"\0" + d for n, d in items)
    return io.BufferedReader(io.BytesIO(data))


def test_the_builder_writes_the_bytecode_an_untrusted_compiler_sends(tmp_path):
    """The base's own interpreter writes nothing (attack review: with the staged tree writable
    it swapped a package folder for a symlink, and the builder's unpacking wrote through it);
    the builder writes each .pyc it sends, for a source it was given."""
    (tmp_path / SITE_PY.lstrip("/")).parent.mkdir(parents=True)
    writer = host_install.PycWriter(tmp_path, (3, 13))
    writer.expect([SITE_PY])
    writer.read(records((SITE_PYC, b"\xf3\r\r\ncode")))
    assert writer.error == ""
    assert (tmp_path / SITE_PYC.lstrip("/")).read_bytes() == b"\xf3\r\r\ncode"


@pytest.mark.parametrize(
    "name",
    [
        "/opt/mlflow-env/lib/python3.13/site-packages/pkg/__pycache__/other.cpython-313.pyc",
        "/opt/mlflow-env/lib/python3.13/site-packages/pkg/__pycache__/__init__.cpython-311.pyc",
        "/opt/mlflow-env/lib/python3.13/site-packages/pkg/__pycache__/../../evil.pth",
        "/etc/ld.so.preload",
    ],
)
def test_a_pyc_no_source_asked_for_is_refused_and_nothing_written(tmp_path, name):
    writer = host_install.PycWriter(tmp_path, (3, 13))
    writer.expect([SITE_PY])
    writer.read(records((name, b"x")))
    assert "no source asked for" in writer.error
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_pyc_over_the_limit_or_a_cut_record_is_refused(tmp_path):
    (tmp_path / SITE_PY.lstrip("/")).parent.mkdir(parents=True)
    writer = host_install.PycWriter(tmp_path, (3, 13))
    writer.expect([SITE_PY])
    stream = io.BufferedReader(io.BytesIO(f"{SITE_PYC}\0{host_install.PYC_LIMIT + 1}\0".encode()))
    writer.read(stream)
    assert "bytes for" in writer.error
    cut = host_install.PycWriter(tmp_path, (3, 13))
    cut.expect([SITE_PY])
    cut.read(io.BufferedReader(io.BytesIO(f"{SITE_PYC}\0100\0short".encode())))
    assert "ended inside a record" in cut.error


def test_a_wheel_never_writes_through_the_skeletons_interpreter_link(tmp_path):
    """The skeleton's bin/python names the base's interpreter by an absolute path; on the
    builder a hostile base can make that a folder of the builder's own (attack review: a
    wheel's `.data/data/bin/python/...` wrote a .pth into the builder's site-packages). Such
    a file is refused, and nothing is written outside the tree."""
    outside = tmp_path / "builder-site-packages"
    outside.mkdir()
    root = tmp_path / "root"
    (root / VENV.lstrip("/") / "bin").mkdir(parents=True)
    (root / VENV.lstrip("/") / "bin" / "python").symlink_to(outside)
    planted = {"evil-1.0.data/data/bin/python/zz-evil.pth": b"import os; os.system('id')\n"}
    wheel = make_wheel(tmp_path, "evil", planted)
    with pytest.raises(StepError, match="through a link that leaves the environment"):
        host_install.install_wheel(wheel, root, VENV, SITE, "evil", MINOR)
    assert list(outside.iterdir()) == []


def test_a_pyc_is_never_written_through_a_link(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    (root / "opt" / "mlflow-env" / "lib" / "python3.13").mkdir(parents=True)
    (root / "opt" / "mlflow-env" / "lib" / "python3.13" / "site-packages").symlink_to(outside)
    writer = host_install.PycWriter(root, (3, 13))
    writer.expect([SITE_PY])
    writer.read(records((SITE_PYC, b"code")))
    assert "through a link" in writer.error
    assert list(outside.rglob("*")) == []


def test_a_compiler_that_sends_a_refused_record_still_ends(tmp_path):
    """After a refused record the rest is drained, so a compiler that goes on writing never
    blocks on a full pipe (attack review: the build hung there)."""
    writer = host_install.PycWriter(tmp_path, (3, 13))
    writer.expect([SITE_PY])
    flood = b"".join([b"/etc/x\0" + b"1\0" + b"x"] + [b"y" * (1 << 20)] * 8)
    writer.read(io.BufferedReader(io.BytesIO(flood)))
    assert "no source asked for" in writer.error

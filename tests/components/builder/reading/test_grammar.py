"""Every input has a grammar, checked before anything runs (issue 23, items 3, 4, 5, 8-10).

Hostile values are fixtures here: image references and Python versions that carry a quote, a
newline and a `RUN --mount=type=secret,id=mlflow-steps-index` line, `${VAR}` and URL
requirements, option values that pip would split again, parameter names with shell syntax, a
YAML bomb, a FIFO, a wheel whose RECORD leaves the target. Each is refused with an error that
names the input; where a Dockerfile is rendered, it is parsed instruction by instruction.
The two registries that misbehave (a token service answering HTML, a Docker-Content-Digest
that is not a digest) are small http.server stand-ins on 127.0.0.1: a real registry cannot be
made to answer that way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mlflow_steps.cli import main
from mlflow_steps.components.builder.backends.layered.host_install import install_wheel
from mlflow_steps.components.builder.backends.recipe import finish_step, from_step, render
from mlflow_steps.components.builder.build import plan
from mlflow_steps.components.builder.oci.registry import PinnedBase, RegistryClient, resolve_base
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.builder.planning.plan import runtime_plan
from mlflow_steps.components.builder.reading import grammar
from mlflow_steps.components.builder.reading.codeset import load_codeset
from mlflow_steps.components.problems import StepError
from mlflow_steps.components.runtime.inputs import InputError, parse_entrypoint_args

DIGEST = "sha256:" + "ab" * 32
SECRET_RUN = "RUN --mount=type=secret,id=mlflow-steps-index cat /run/secrets/mlflow-steps-index"
HOSTILE_IMAGES = [
    f'python:3.11"\n{SECRET_RUN}\n#x@{DIGEST}',
    f"evil.example/x@{DIGEST}\n{SECRET_RUN}",
    f"python@{DIGEST} AS x\n{SECRET_RUN}",
    'python:3.11" \\\n && id',
    f"x@sha256:{'AB' * 32}",  # uppercase hex
    f"x@sha512:{'ab' * 64}",
    "$(id)/x:1",
    "x:1;id",
    "Python:3.11",
    "x:" + "a" * 129,
]
HOSTILE_PYTHONS = [
    f'3.11"\n{SECRET_RUN}\n#',
    "3.11 AS x",
    "3.11\nRUN id",
    "3.11@" + DIGEST,
    "$(id)",
]
MAIN = "name: t\nentry_points:\n  main:\n    command: python train.py\n"
MINIMAL = "FROM debian\n"


def instructions(dockerfile: str) -> list[str]:
    """The instructions of a Dockerfile as buildah reads them: comments skipped, `\\` line
    continuations joined; each entry is the instruction word (FROM, RUN, ...)."""
    found, pending = [], ""
    for line in dockerfile.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1]
            continue
        found.append((pending + line).split(maxsplit=1)[0].upper())
        pending = ""
    return found


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


# --- image references ----------------------------------------------------------------------


@pytest.mark.parametrize("image", HOSTILE_IMAGES)
def test_hostile_references_never_reach_a_from_line(image):
    assert grammar.reference_problem(image)
    with pytest.raises(StepError, match="image"):
        from_step(image)
    with pytest.raises(StepError):
        render(runtime_plan({"kind": "docker_env"}, image))


@pytest.mark.parametrize(
    "image",
    [
        "python:3.11",
        "continuumio/miniconda3:23.5.2-0",
        "localhost:5000/team/base:1",
        f"127.0.0.1:30500/a/b__c-d.e@{DIGEST}",
        f"ghcr.io/org/img:v1.2_3@{DIGEST}",
        "[::1]:5000/x",
    ],
)
def test_valid_references_pass(image):
    assert grammar.reference_problem(image) == ""
    assert from_step(image) == [f"FROM {image}"]


@pytest.mark.parametrize("image", HOSTILE_IMAGES)
def test_docker_env_image_is_refused_at_load_naming_the_input(tmp_path, image):
    write(tmp_path, {"MLproject": MAIN + f"docker_env:\n  image: {json.dumps(image)}\n"})
    with pytest.raises(StepError, match="docker_env `image`"):
        load_codeset(tmp_path)


@pytest.mark.parametrize("python", HOSTILE_PYTHONS)
def test_python_env_python_is_refused_at_load_naming_the_input(tmp_path, python):
    write(
        tmp_path,
        {
            "MLproject": MAIN,
            "python_env.yaml": f"python: {json.dumps(python)}\ndependencies: [six]\n",
        },
    )
    with pytest.raises(
        StepError, match=r"python_env.yaml: `python`|python_env.yaml: `python` must"
    ):
        load_codeset(tmp_path)


def test_labels_are_json_strings_one_instruction(tmp_path):
    """A base name (as given) goes into a LABEL as a JSON string: no quote ends it, no newline
    starts another instruction."""
    hostile = PinnedBase(f'x"\n{SECRET_RUN}\nLABEL a="', DIGEST, f"x@{DIGEST}")
    write(tmp_path, {"MLproject": MAIN, "requirements.txt": "six\n"})
    install = load_codeset(tmp_path).environment.install_plan(BuildOptions(base_image="debian"))
    lines = finish_step(install, None, hostile)
    assert [w for w in instructions("\n".join(lines))] == ["WORKDIR", "LABEL", "ENTRYPOINT"]
    label = next(line for line in lines if "base.name=" in line)
    value = label.split("org.opencontainers.image.base.name=", 1)[1].split(" \\")[0]
    assert json.loads(value) == hostile.name
    benign = render(install, PinnedBase("debian", DIGEST, f"debian@{DIGEST}")).dockerfile
    dockerfile = render(install, PinnedBase(hostile.name, DIGEST, f"debian@{DIGEST}")).dockerfile
    assert instructions(dockerfile) == instructions(benign)  # the same steps, no more
    assert instructions(dockerfile)[0] == "FROM" and SECRET_RUN not in dockerfile.splitlines()
    # Two RUNs: the download phase (the index secret) and the install phase (none).
    assert instructions(benign).count("RUN") == 2


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--base-image", HOSTILE_IMAGES[0]),
        ("--python-version", HOSTILE_PYTHONS[0]),
        ("--miniconda-version", '4.10.3"\nRUN id'),
        ("--registry", "reg.example/x"),
        ("--repository", "Team/X"),
        ("--context", "a\nb"),
        ("--mlflow-requirement", "x @ http://127.0.0.1:9/x.whl?q=${PIP_INDEX_URL}"),
    ],
)
def test_each_builder_input_is_checked_by_inspect_and_build(tmp_path, capsys, flag, value):
    codeset = write(tmp_path / "c", {"MLproject": MAIN, "requirements.txt": "six\n"})
    out = tmp_path / "out"
    name = flag[2:].replace("-", "_")
    for command in (["inspect"], ["build", "--output", str(out), "--engine", "buildah"]):
        assert main([*command, str(codeset), flag, value]) != 0
        err = capsys.readouterr().err
        assert name in err and "Traceback" not in err, err
    assert not out.exists()


# --- digests from a registry ---------------------------------------------------------------


class Answers(BaseHTTPRequestHandler):
    """A registry stand-in: HEAD of a manifest -> 401 Bearer (realm: /token) unless
    `challenge` is off; /token -> `token_body`; HEAD with a token -> 200 with `digest`."""

    digest = DIGEST
    challenge = False
    token_body = b"<html>gateway error</html>"

    def log_message(self, *args):  # quiet
        pass

    def do_HEAD(self):
        if self.challenge and "Authorization" not in self.headers:
            self.send_response(401)
            realm = f"http://{self.headers['Host']}/token"
            self.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="s"')
        else:
            self.send_response(200)
            self.send_header("Docker-Content-Digest", self.digest)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.token_body)))
        self.end_headers()
        self.wfile.write(self.token_body)


@pytest.fixture
def stand_in():
    def start(**attrs):
        handler = type("Handler", (Answers,), attrs)
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"127.0.0.1:{server.server_address[1]}"

    servers: list = []
    yield start
    for server in servers:
        server.shutdown()


@pytest.mark.parametrize(
    "header",
    [f"{DIGEST}\n{SECRET_RUN}", f'{DIGEST}" AS x', "sha256:" + "AB" * 32, "sha256:../../x"],
)
def test_a_docker_content_digest_that_is_not_a_digest_never_reaches_from(stand_in, header):
    host = stand_in(digest=header.replace("\n", " "))  # one header line; the check is the same
    client = RegistryClient(host, insecure=True, retries=0)
    with pytest.raises(StepError, match="Docker-Content-Digest"):
        resolve_base(f"{host}/team/base:1", frozenset({host}), client)


def test_a_token_service_answering_html_is_a_clean_error(stand_in):
    host = stand_in(challenge=True)
    client = RegistryClient(host, insecure=True, retries=0, credentials=("u", "p"))
    with pytest.raises(StepError, match="not JSON"):
        client.manifest_digest("team/base", "1")


# --- mlflow_requirement and requirement options --------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "x @ http://127.0.0.1:9/x.whl?q=${PIP_INDEX_URL}",
        "x@http://127.0.0.1:9/x.whl",
        "mlflow-skinny==${VERSION}",
        "--index-url=http://127.0.0.1:9/simple",
        "-r /etc/passwd",
        "./vendor/pkg",
        "git+https://127.0.0.1:9/x.git",
        "mlflow[",
    ],
)
def test_mlflow_requirement_takes_named_requirements_only(tmp_path, value):
    assert grammar.mlflow_requirement_problems(value)
    write(tmp_path, {"MLproject": MAIN, "requirements.txt": "six\n"})
    with pytest.raises(StepError, match="mlflow_requirement"):
        plan(tmp_path, BuildOptions(mlflow_requirement=value, base_image="debian"))


def test_mlflow_requirement_default_and_pins_pass():
    assert grammar.mlflow_requirement_problems("mlflow-skinny") == []
    assert grammar.mlflow_requirement_problems("mlflow-skinny==2.22.0 mlflow[extras]>=2") == []


@pytest.mark.parametrize(
    "line",
    [
        '--index-url "http://127.0.0.1:9/simple/ -r /abs/file"',
        "--extra-index-url='http://127.0.0.1:9/simple/ --constraint /abs/file'",
        "--find-links 'vendor -r /abs/file'",
        "six --hash 'sha256:00 --hash=sha256:11'",
        '-i "http://h/simple/\\"x"',
    ],
)
def test_option_values_pip_would_split_again_are_refused(tmp_path, line):
    secret = tmp_path / "abs-file"
    secret.write_text("leaked-package\n")
    line = line.replace("/abs/file", str(secret))
    write(tmp_path, {"c/MLproject": MAIN, "c/requirements.txt": f"six\n{line}\n"})
    with pytest.raises(StepError, match="pip would split it"):
        load_codeset(tmp_path / "c")


# --- entry-point parameter names -----------------------------------------------------------


@pytest.mark.parametrize(
    "args", ["x;touch${IFS}pwned;y=1", "$(id)=1", "'x;id'=1", "--x=1", "x`id`=1"]
)
def test_parameter_names_with_shell_syntax_are_refused(args):
    with pytest.raises(InputError, match="not a parameter name"):
        parse_entrypoint_args(args)


def test_parameter_names_that_are_words_pass():
    values = parse_entrypoint_args("alpha=0.1,l1_ratio=1 max-depth=3 model.lr='a;b'")
    assert values == {"alpha": "0.1", "l1_ratio": "1", "max-depth": "3", "model.lr": "a;b"}


def test_mlproject_parameter_names_are_checked_by_the_builder(tmp_path):
    write(
        tmp_path,
        {
            "MLproject": MAIN + '    parameters:\n      "x;touch${IFS}pwned;y": float\n',
            "requirements.txt": "six\n",
        },
    )
    with pytest.raises(StepError, match="not a parameter name"):
        load_codeset(tmp_path)


def test_run_refuses_a_hostile_name_before_any_engine_starts(tmp_path, capsys):
    codeset = write(tmp_path / "c", {"MLproject": MAIN, "requirements.txt": "six\n"})
    for engine in (["--engine", "local"], ["--image", "x/y:1", "--engine", "buildah"]):
        argv = ["run", str(codeset), *engine, "--entrypoint-args", "x;touch${IFS}pwned;y=1"]
        assert main(argv) != 0
        assert "not a parameter name" in capsys.readouterr().err
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


# --- parsers with limits -------------------------------------------------------------------

BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
    "channels: [defaults]\ndependencies: [python=3.10]\n"
)


@pytest.mark.parametrize("name", ["conda.yaml", "python_env.yaml", "MLproject"])
def test_a_yaml_bomb_is_refused_fast(tmp_path, name):
    files = {"MLproject": MAIN, "conda.yaml": "dependencies: [python=3.10]\n", name: BOMB}
    write(tmp_path, files)
    started = time.monotonic()
    with pytest.raises(StepError, match=r"alias \*a"):
        load_codeset(tmp_path)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "name", ["requirements.txt", "conda.yaml", "MLproject", "pylock.toml", "inc.txt"]
)
def test_fifos_in_the_codeset_are_refused_not_read(tmp_path, name):
    files = {"MLproject": MAIN, "requirements.txt": "six\n-r inc.txt\n", "inc.txt": "numpy\n"}
    write(tmp_path, {k: v for k, v in files.items() if k != name})
    os.mkfifo(tmp_path / name)
    done: list = []

    def load():
        try:
            load_codeset(tmp_path)
        except StepError as exc:
            done.append(str(exc))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(10)
    assert done and "FIFO" in done[0], done  # a blocked read would never finish


def test_a_path_requirement_to_a_fifo_is_refused(tmp_path):
    write(tmp_path, {"MLproject": MAIN, "requirements.txt": "./vendor/pkg.whl\n"})
    (tmp_path / "vendor").mkdir()
    os.mkfifo(tmp_path / "vendor" / "pkg.whl")
    with pytest.raises(StepError, match="FIFO"):
        load_codeset(tmp_path)


def test_oversized_files_are_refused(tmp_path):
    write(tmp_path, {"MLproject": MAIN, "requirements.txt": "six\n" + "#" * (5 << 20) + "\n"})
    with pytest.raises(StepError, match="larger than"):
        load_codeset(tmp_path)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "3.11; id\n"])
def test_python_version_file_empty_or_not_a_version(tmp_path, text):
    write(
        tmp_path,
        {
            "MLproject": MAIN,
            "pyproject.toml": '[project]\nname = "p"\nversion = "0"\n',
            "uv.lock": "version = 1\n",
            ".python-version": text,
        },
    )
    with pytest.raises(StepError, match=r"\.python-version"):
        load_codeset(tmp_path)


# --- wheels that write outside the target --------------------------------------------------


def crafted_wheel(folder: Path, entry: str) -> Path:
    """A wheel whose RECORD (and archive) holds `entry`, hashes right, as a hostile index
    would serve it."""

    def record(name: str, data: bytes) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        return f"{name},sha256={digest},{len(data)}"

    files = {
        "evil/__init__.py": b"",
        entry: b"pwned\n",
        "evil-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
        "evil-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    wheel = folder / "evil-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        lines = [record(n, d) for n, d in files.items()] + ["evil-1.0.dist-info/RECORD,,"]
        archive.writestr("evil-1.0.dist-info/RECORD", "\n".join(lines) + "\n")
    return wheel


@pytest.mark.parametrize("entry", ["../../x", "../../../../x", "evil-1.0.data/data/../../../x"])
def test_a_wheel_record_entry_outside_the_target_is_refused(tmp_path, entry):
    wheel = crafted_wheel(tmp_path, entry)
    root = tmp_path / "stage" / "root"
    root.mkdir(parents=True)
    site = "/opt/mlflow-env/lib/python3.11/site-packages"
    with pytest.raises(StepError, match="evil"):
        install_wheel(wheel, root, "/opt/mlflow-env", site, "evil", (3, 11))
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.read_bytes() == b"pwned\n"]
    assert written == []


def test_a_quoted_include_is_read_as_pip_reads_it(tmp_path):
    """-r/-c values are read by the builder itself, after pip's shlex split: a quoted file name
    with a space is one file, and one that hides a second include is a file that is not there."""
    write(tmp_path, {"MLproject": MAIN, "requirements.txt": 'six\n-r "more reqs.txt"\n'})
    write(tmp_path, {"more reqs.txt": "numpy\n"})
    assert load_codeset(tmp_path).environment.canonical()["requirements"] == ["numpy", "six"]
    secret = tmp_path.parent / f"{tmp_path.name}-secret.txt"
    secret.write_text("leaked-package\n")
    write(tmp_path, {"requirements.txt": f'six\n-r "more reqs.txt -r {secret}"\n'})
    with pytest.raises(StepError) as caught:
        load_codeset(tmp_path)
    assert "leaked-package" not in str(caught.value)


def test_the_docker_env_check_is_one_run_whose_message_is_one_quoted_word(tmp_path):
    dockerfile = render(runtime_plan({"kind": "docker_env"}, f"team/env@{DIGEST}")).dockerfile
    assert instructions(dockerfile) == [
        "FROM", "COPY", "RUN", "ENV", "WORKDIR", "LABEL", "ENTRYPOINT"
    ]  # fmt: skip
    line = next(line for line in dockerfile.splitlines() if line.startswith("RUN "))
    script = tmp_path / "check.sh"
    script.write_text(line[4:].replace('python -c "import mlflow"', "false"))
    done = subprocess.run(["sh", str(script)], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.startswith(f"mlflow-steps: the docker_env image team/env@{DIGEST} needs")

"""Pure-Python distributions installed by the builder itself, without the base image.

A wheel tagged `none-any` (no ABI, any platform; PEP 425) holds no machine code for the base
to load, so installing it is unpacking it into the venv's scheme (pypa/installer, the
reference implementation of the wheel spec: RECORD, INSTALLER, console scripts with the venv's
interpreter in their shebang) and compiling its .py files for the base's Python minor version
(the recipe's compile-bytecode.py, run by an interpreter of that minor version on the builder:
the bytecode magic is per minor version; PEP 552 unchecked-hash .pyc, named by their path in
the image). Nothing of the base is pulled for it.

A distribution is installed this way only when its wheel is `none-any`, the lock gives the
wheel's URL, the wheel carries no shared library (`.so`), and, with bytecode, the builder
has an interpreter of the base's minor version (its own, or one `uv python find` knows).
Otherwise it is installed in the base (`workspace`). The layer identity names which, so the
two never share a digest by accident (`units.identity`).

Downloads are hash-checked against the lock (sha256) and use the index's credentials for the
index's host only; they are never logged.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import posixpath
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import IO, Any, Union
from urllib.parse import unquote, urlsplit

import requests
from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from .... import confinement
from ....problems import StepError
from ....processes import wait_exit
from ....subprocess_env import minimal_env
from ...oci.registry_push import origin
from ...planning.indexes import IndexSettings, ambiguous_url, host_of, origin_of
from ...planning.plan import find_uv
from .base_files import within
from .tarlayer import LayerWriters
from .wheels import Pin

INSTALLER = b"mlflow-steps\n"  # the .dist-info/INSTALLER of what the builder installs itself
CHUNK = 1 << 20
DOWNLOADS = 8  # wheels downloaded at a time
WORKERS_FROM = 4  # wheels from which they are unpacked and compiled in worker processes


@dataclass(frozen=True)
class Untrusted:
    """An interpreter the builder does not trust: the base's own, run from its extracted files
    (the base may be the codeset's `docker_env` image). `argv`: its argv prefix; `reads`: the
    folders it may read (the base's files). It runs confined (`confinement.confined`): it
    reads those folders, the compile script's and the tree it compiles, writes nothing, opens
    no socket and cannot fork; its bytecode comes back over a pipe (`compile-bytecode.py
    --emit`) and the builder writes it (`PycWriter`)."""

    argv: tuple[str, ...]
    reads: tuple[str, ...]


Python = Union[list[str], Untrusted]  # a runtime alias: Python 3.9 has no `|` between types


def compiler_argv(python: Python | None, minor: tuple[int, int], script: Path, root: Path,
                  args: list[str]) -> list[str]:  # fmt: skip
    """The argv that runs compile-bytecode.py (`script`, then `args`) over the tree at `root`
    by `python` (default: `interpreter_for(minor)`), isolated (-I -S: no environment variable,
    no site folder, no wheel's .pth file runs); an `Untrusted` one with `--emit`, confined to
    reading its files, the script's folder and `root`. StepError when there is none."""
    argv = list(python.argv) if isinstance(python, Untrusted) else list(python or [])
    argv = argv or [interpreter_for(minor) or ""]
    if not argv[0]:
        raise StepError("no interpreter of Python {}.{} to compile with".format(*minor))
    if isinstance(python, Untrusted):
        args = [*args[:-1], "--emit", args[-1]]  # the records replace the files
    argv = [*argv, "-I", "-S", str(script), "--root", str(root), *args]
    if isinstance(python, Untrusted):
        argv = confinement.confined(argv, [*python.reads, str(script.parent), str(root)], [])
    return argv


PYC_LIMIT = 64 << 20  # bytes of one .pyc an untrusted compiler may send
COMPILE_TIMEOUT = 3600  # seconds a compiler may take once every file was sent


class PycWriter:
    """Writes into the tree at `root` the .pyc records an untrusted compiler sends on `stream`
    (`compile-bytecode.py --emit`: image path, NUL, decimal length, NUL, bytes). A record is
    written only when its path is the `__pycache__/<name>.cpython-XY.pyc` (PEP 3147, the
    base's minor version) of a source the builder asked for (`expect`), its length at most
    PYC_LIMIT and, with the others, at most four times the sources' bytes plus PYC_LIMIT; it is
    written without following a link. Anything else sets `error` (the compile then fails);
    the stream is drained to its end either way, so the compiler never blocks on it."""

    def __init__(self, root: Path, minor: tuple[int, int]) -> None:
        self.root = root
        self.tag = "cpython-{}{}".format(*minor)
        self.expected: set[str] = set()
        self.budget = PYC_LIMIT
        self.error = ""

    def expect(self, image_paths: Iterable[str]) -> None:
        for path in image_paths:
            folder, name = posixpath.split(path)
            self.expected.add(f"{folder}/__pycache__/{name[:-3]}.{self.tag}.pyc")
            with suppress(OSError):
                self.budget += 4 * (self.root / path.lstrip("/")).stat().st_size

    def read(self, stream: Any) -> None:
        """Until the stream ends; after a refused record, what follows is read and dropped."""
        pending = bytearray()
        try:
            while True:
                name, length = self.header(stream, pending)
                if name is None:
                    return
                while len(pending) < length:
                    chunk = stream.read1(CHUNK)
                    if not chunk:
                        raise ValueError("the stream ended inside a record")
                    pending += chunk
                self.write(name, bytes(pending[:length]))
                del pending[:length]
        except (ValueError, OSError) as error:
            self.error = str(error)
            while stream.read1(CHUNK):
                pass

    def header(self, stream: Any, pending: bytearray) -> tuple[str | None, int]:
        while pending.count(b"\0") < 2:
            if len(pending) > 8192:
                raise ValueError("a record's header is too long")
            chunk = stream.read1(CHUNK)
            if not chunk:
                if pending:
                    raise ValueError("the stream ended inside a record")
                return None, 0
            pending += chunk
        first = pending.index(b"\0")
        second = pending.index(b"\0", first + 1)
        name = os.fsdecode(bytes(pending[:first]))
        raw_length = bytes(pending[first + 1 : second])
        del pending[: second + 1]
        if name not in self.expected or posixpath.normpath(name) != name:
            raise ValueError(f"a .pyc no source asked for: {name[:200]!r}")
        if not raw_length.isdigit() or int(raw_length) > min(PYC_LIMIT, self.budget):
            raise ValueError(f"a .pyc of {raw_length[:20]!r} bytes for {name}")
        self.budget -= int(raw_length)
        return name, int(raw_length)

    def write(self, name: str, data: bytes) -> None:
        path = self.root / name.lstrip("/")
        if not inside_tree(str(self.root), str(path.parent)):
            raise ValueError(f"{name} would be written through a link that leaves the tree")
        path.parent.mkdir(exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(path, flags, 0o644), "wb") as handle:
            handle.write(data)


def wheel_name(pin: Pin) -> str:
    """The wheel's file name, from its URL; StepError when it is not a plain file name (a lock
    is checked for that as it is read, `resolution.odd_file_name`: this is the last guard
    before it is joined to a folder)."""
    name = unquote(PurePosixPath(urlsplit(pin.wheel_url or "").path).name)
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise StepError(f"{pin.name} {pin.version}: the wheel's file name {name!r} is not plain")
    return name


def is_pure(pin: Pin) -> bool:
    """The pin's wheel is `none-any` (every tag) and the lock says where to download it."""
    if not pin.wheel_url or not pin.wheel_sha256 or not urlsplit(pin.wheel_url).scheme:
        return False
    try:
        wheel_tags = parse_wheel_filename(wheel_name(pin))[3]
    except InvalidWheelFilename:
        return False
    return all(tag.abi == "none" and tag.platform == "any" for tag in wheel_tags)


@cache
def interpreter_for(minor: tuple[int, int]) -> str | None:
    """An interpreter of Python `minor` (major, minor) on the builder: its own, else one that
    `uv python find --no-python-downloads` finds; None when there is none."""
    if sys.version_info[:2] == minor:
        return sys.executable
    uv = find_uv()
    if not uv:
        return None
    # --system and an empty working folder: uv runs every interpreter it considers to learn its
    # version, and without them it considers a `.venv` in the working folder or above it (the
    # codeset's, where a step's working folder is the codeset).
    with tempfile.TemporaryDirectory(prefix="mlflow-steps-find-") as empty:
        found = subprocess.run(
            [uv, "python", "find", "--system", "--no-project", "--no-python-downloads",
             "--no-config", "{}.{}".format(*minor)],
            capture_output=True,
            text=True,
            cwd=empty,
            # HOME kept: uv's own Pythons are found under it (no network, nothing of the codeset)
            env=minimal_env(home=os.environ.get("HOME", "/nonexistent")),
        )  # fmt: skip
    path = found.stdout.strip()
    return path if found.returncode == 0 and path else None


def can_install(pin: Pin, minor: tuple[int, int], compile_bytecode: bool) -> bool:
    """Whether the builder installs `pin` itself (see the module doc; the wheel's content is
    checked again once downloaded)."""
    return is_pure(pin) and (not compile_bytecode or interpreter_for(minor) is not None)


def download(pin: Pin, index: IndexSettings, folder: Path) -> Path:
    """The pin's wheel in `folder`, its sha256 checked against the lock. Raises StepError.
    The index's credentials go only to an index's own origin (`index_credentials`); no
    netrc, proxy or other ambient setting of this process is read (`trust_env` off)."""
    url = pin.wheel_url or ""
    credentials = index_credentials(url, index)
    trusted = set(index.trusted_hosts.split())
    out = folder / wheel_name(pin)
    digest = hashlib.sha256()
    try:
        with (
            session() as http,
            http.get(
                url,
                auth=credentials,
                stream=True,
                timeout=60,
                verify=host_of(url) not in trusted,
            ) as reply,
        ):
            if reply.status_code != 200:
                raise StepError(
                    f"{pin.name} {pin.version}: the index answered {reply.status_code} for "
                    f"{wheel_name(pin)}"
                )
            with out.open("wb") as handle:
                for chunk in reply.iter_content(CHUNK):
                    digest.update(chunk)
                    handle.write(chunk)
    except requests.RequestException as error:
        raise StepError(
            f"{pin.name} {pin.version}: {wheel_name(pin)} could not be downloaded "
            f"({type(error).__name__})"
        ) from None
    if digest.hexdigest() != pin.wheel_sha256:
        raise StepError(
            f"{pin.name} {pin.version}: {wheel_name(pin)} does not match the lock's sha256 "
            f"(got {digest.hexdigest()}); nothing was pushed"
        )
    return out


def session() -> requests.Session:
    http = requests.Session()
    http.trust_env = False
    return http


def index_credentials(url: str, index: IndexSettings) -> tuple[str, str] | None:
    """The credentials of `url`'s host when `url` is on the origin (scheme, host, port) of
    an index URL the user configured, and is a secure origin as pip takes it (`secure_origin`);
    else None. A lock's URL on another origin gets none."""
    credentials = index.credentials.get(origin_of(url))
    if credentials is None or ambiguous_url(url):
        return None
    configured = [index.index_url, *index.extra_index_urls]
    if origin(url) not in {origin(u) for u in configured if u}:
        return None
    if not secure_origin(url, index):
        return None
    return credentials


def secure_origin(url: str, index: IndexSettings) -> bool:
    """Whether pip 26.3 takes `url` as a secure origin (`network/session.py`, `SECURE_ORIGINS`
    and `iter_secure_origins`): https, a loopback host (`localhost`, 127.0.0.0/8, ::1), or a
    host the user's `pip_trusted_host` names."""
    host = urlsplit(url).hostname or ""
    if urlsplit(url).scheme == "https" or host == "localhost":
        return True
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    return host_of(url) in index.trusted_hosts.split()


def has_shared_library(wheel: Path) -> bool:
    with zipfile.ZipFile(wheel) as archive:
        return any(".so" in PurePosixPath(name).suffixes for name in archive.namelist())


def scheme(venv: str, site: str, name: str, minor: tuple[int, int]) -> dict[str, str]:
    """The venv's install scheme (sysconfig's `venv` scheme, as pip and uv use it)."""
    return {
        "purelib": site,
        "platlib": site,
        "scripts": f"{venv}/bin",
        "data": venv,
        "headers": "{}/include/site/python{}.{}/{}".format(venv, *minor, name),
    }


def inside_tree(root: str, path: str) -> bool:
    """Whether `path` stays under `root` once every link in the part of it that exists is
    followed (`os.path.realpath`; what does not exist yet cannot be a link)."""
    return within(os.path.realpath(root), os.path.realpath(path))


class ContainedDestination(SchemeDictionaryDestination):
    """pypa/installer's destination, refusing any file (RECORD entry, console script, .data
    file) whose path leaves its scheme's folder: installer 0.7 (what `installer>=0.7` gives on
    Python 3.9) writes a RECORD entry `../../x` outside the staging root; 1.x refuses it with
    a ValueError. Both become this check's StepError."""

    written: list[str]  # the image paths written, in order (set by `install_wheel`)

    def write_to_fs(self, scheme: Any, path: Any, stream: Any, is_executable: bool) -> Any:
        folder = posixpath.normpath("/" + self.scheme_dict[scheme].lstrip("/"))
        target = posixpath.normpath(posixpath.join(folder, os.fspath(path)))
        if posixpath.isabs(os.fspath(path)) or not target.startswith(folder.rstrip("/") + "/"):
            raise StepError(
                f"the wheel writes {os.fspath(path)!r}, outside its {scheme} folder {folder}; "
                "refusing to install it (a wheel's files stay inside the environment)"
            )
        # Never through a link: the skeleton's bin/python names the base's interpreter by an
        # absolute path, which on the builder may be a folder of the builder's own (attack
        # review: `.data/data/bin/python/...` wrote a .pth there).
        folder_on_disk = os.path.dirname(str(self.destdir) + target)
        if not inside_tree(str(self.destdir), folder_on_disk):
            raise StepError(
                f"the wheel writes {os.fspath(path)!r} through a link that leaves the "
                "environment; refusing to install it"
            )
        # The folder made here, tolerating another process's making it meanwhile (wheels are
        # unpacked in parallel, and two may share a namespace package's folder).
        os.makedirs(folder_on_disk, exist_ok=True)
        if hasattr(self, "written"):
            self.written.append(target)
        return super().write_to_fs(scheme, path, stream, is_executable)


def install_wheel(wheel: Path, root: Path, venv: str, site: str, name: str,
                  minor: tuple[int, int]) -> list[str]:  # fmt: skip
    """Install `wheel` into the venv's scheme, staged under `root` (StepError when any of its
    files would leave it). Returns the image paths written."""
    destination = ContainedDestination(
        scheme(venv, site, name, minor),
        interpreter=f"{venv}/bin/python",
        script_kind="posix",
        destdir=str(root),
    )
    destination.written = []
    try:
        with WheelFile.open(wheel) as source:
            install(source, destination, {"INSTALLER": INSTALLER})
    except StepError as exc:
        raise StepError(f"{name} ({wheel.name}): {exc}") from None
    except (ValueError, OSError, zipfile.BadZipFile) as exc:  # installer's own refusals
        raise StepError(f"{name} ({wheel.name}): cannot be installed: {exc}") from None
    return destination.written


class Inline(Executor):
    """Runs what it is given at once, in this thread."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller by result()
            future.set_exception(exc)
        return future


def install_one(wheel: Path, root: Path, venv: str, site: str, name: str,
                minor: tuple[int, int], binary: bool) -> list[str] | None:  # fmt: skip
    """One wheel, in a worker: refused (None) when not `binary` and it holds a shared
    library; else installed (the image paths written) and the wheel file removed."""
    if not binary and has_shared_library(wheel):
        return None
    written = install_wheel(wheel, root, venv, site, name, minor)
    wheel.unlink()
    return written


def install_pure(pins: Iterable[Pin], root: Path, venv: str, site: str,
                 minor: tuple[int, int], index: IndexSettings,
                 compile_script: bytes | None) -> list[Pin]:  # fmt: skip
    """Install `pins` under `root` (staged image paths) and compile their bytecode when
    `compile_script` is given. Returns the pins whose wheel turned out to hold a shared
    library: not installed here (the caller installs them in the base)."""
    return install_wheels(pins, root, venv, site, minor, index, compile_script, binary=False)


def download_all(pins: list[Pin], index: IndexSettings, folder: Path) -> list[Path]:
    """`download` of every pin, `DOWNLOADS` at a time; the wheels in `pins` order."""
    with ThreadPoolExecutor(DOWNLOADS) as downloads:
        return list(downloads.map(lambda pin: download(pin, index, folder), pins))


def install_wheels(pins: Iterable[Pin], root: Path, venv: str, site: str,
                   minor: tuple[int, int], index: IndexSettings, compile_script: bytes | None,
                   binary: bool, python: Python | None = None,
                   workers: LayerWriters | None = None, downloaded: list[Path] | None = None,
                   compiler: Compiler | None = None) -> list[Pin]:  # fmt: skip
    """`install_pure`, or with `binary` every wheel (the engine-less build: the wheel was
    chosen for the base's tags, and its libraries are checked afterwards, `libraries`).
    Downloads run `DOWNLOADS` at a time (`downloaded`: the pins' wheels, already downloaded
    by `download_all`; they are removed as they are unpacked); wheels are unpacked by
    `workers` (the caller's, so that no other processes start), else by processes of their
    own, or here when there are few; `python`: the argv of the interpreter that compiles
    (default: `interpreter_for(minor)`); `compiler`: the caller's `Compiler` (then
    `compile_script` is not used; the caller waits for it), else one of its own."""
    pins = list(pins)
    with (
        tempfile.TemporaryDirectory(prefix="mlflow-steps-wheels-") as tmp,
        ExitStack() as stack,
    ):
        # A few wheels (a bump) are unpacked here: a worker process takes longer to start.
        pool: Executor = Inline()
        if len(pins) >= WORKERS_FROM:
            if workers is None:
                workers = stack.enter_context(LayerWriters(os.cpu_count() or 1))
            pool = workers.executor()
        wheels = downloaded if downloaded is not None else download_all(pins, index, Path(tmp))
        if compiler is None and compile_script is not None:
            compiler = stack.enter_context(
                Compiler(root, site, minor, compile_script, python, Path(tmp))
            )
        # The largest first, so that no large wheel is left for one worker at the end.
        order = sorted(range(len(pins)), key=lambda at: (-wheels[at].stat().st_size, at))
        done = {}
        for at in order:
            name = pins[at].name
            done[at] = pool.submit(install_one, wheels[at], root, venv, site, name, minor, binary)
        # Each wheel's files are compiled as soon as it is unpacked (while others are).
        for future in as_completed(done.values()):
            written = future.result()
            if written is not None and compiler is not None:
                compiler.add(written)
        refused = [pin for at, pin in enumerate(pins) if done[at].result() is None]
    return refused


class Compiler:
    """compile-bytecode.py over image path `site` of the tree at `root`, run by `python` (an
    argv prefix: the base's own interpreter through its loader; default
    `interpreter_for(minor)`) from the start, each file compiled as soon as it is `add`ed
    (`--stdin`); it is done when the context ends (StepError when it failed). Compiled by a
    fresh interpreter, on every core: the bytecode of a file depends on which strings the
    compiling process holds, so never this one. A file added twice (two wheels write it)
    is compiled again at the end, from what was written last."""

    def __init__(self, root: Path, site: str, minor: tuple[int, int], compile_script: bytes,
                 python: Python | None, tmp: Path) -> None:  # fmt: skip
        script = tmp / "compile-bytecode.py"
        script.write_bytes(compile_script)
        self.argv = compiler_argv(python, minor, script, root, ["--stdin", site])
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed when the context ends)
        self.sent: set[str] = set()
        self.again: list[str] = []
        self.pyc = PycWriter(root, minor) if isinstance(python, Untrusted) else None
        self.start()

    def start(self) -> None:
        emits = self.pyc is not None
        self.process = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stderr=self.errors, env=minimal_env(),
            stdout=subprocess.PIPE if emits else subprocess.DEVNULL,
        )  # fmt: skip
        self.reader: threading.Thread | None = None
        if self.pyc is not None:
            self.reader = threading.Thread(
                target=self.pyc.read, args=(self.process.stdout,), daemon=True
            )
            self.reader.start()

    def add(self, image_paths: Iterable[str]) -> None:
        """Compile these files (those of them the script compiles) once they are written."""
        fresh: list[str] = []
        for path in image_paths:
            if path.endswith(".py"):
                (self.again if path in self.sent else fresh).append(path)
        self.sent.update(fresh)
        if self.pyc is not None:
            self.pyc.expect(fresh)
        self.send(fresh)

    def send(self, paths: list[str]) -> None:
        assert self.process.stdin is not None
        # When it stopped (BrokenPipeError), its error is read once it is waited for.
        with suppress(BrokenPipeError):
            self.process.stdin.write(b"".join(os.fsencode(p) + b"\0" for p in paths) + b"\0")
            self.process.stdin.flush()

    def __enter__(self) -> Compiler:
        return self

    def __exit__(self, kind, *exc) -> None:
        assert self.process.stdin is not None
        try:
            if kind is not None:
                self.process.kill()
            else:
                again = sorted(set(self.again))
                if again:
                    self.close()
                    self.start()
                    self.send(again)
                self.close()
        finally:
            self.process.wait()
            self.errors.close()

    def close(self) -> None:
        assert self.process.stdin is not None
        with suppress(BrokenPipeError):
            self.process.stdin.close()
        try:  # the untrusted one is bounded by its RLIMIT_CPU too (`confinement`)
            returncode = wait_exit(self.process, COMPILE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise StepError(f"compiling bytecode took over {COMPILE_TIMEOUT} s") from None
        if self.reader is not None:
            # It ends with the stream; a process of the compiler's own holding it is refused.
            self.reader.join(timeout=60)
            if self.reader.is_alive():
                raise StepError("compiling bytecode failed: the compiler's output did not end")
        if returncode != 0:
            text = tail(self.errors).strip()
            raise StepError(f"compiling bytecode failed: {text[-2000:]}")
        if self.pyc is not None and self.pyc.error:
            raise StepError(f"compiling bytecode failed: {self.pyc.error}")


def tail(file: IO[bytes], size: int = 4096) -> str:
    """The last `size` bytes of an open file, as text."""
    end = file.seek(0, os.SEEK_END)
    file.seek(max(end - size, 0))
    return file.read(size).decode(errors="replace")


def compile_tree(root: Path, site: str, minor: tuple[int, int], compile_script: bytes,
                 python: Python | None, tmp: Path) -> None:  # fmt: skip
    """compile-bytecode.py over the .py files under image path `site` of the tree at `root`,
    by `python` (`compiler_argv`), as `Compiler` does."""
    top = root / site.lstrip("/")
    paths = sorted("/" + str(p.relative_to(root)) for p in top.rglob("*.py") if p.is_file())
    with Compiler(root, site, minor, compile_script, python, tmp) as compiler:
        compiler.add(paths)

"""Read pip requirement lines as pip reads them, into a normal form (what the tag hashes) and the
files the install needs (what ships into the build context).

The line forms are those of pip's requirements-file format (pip 26.3,
`pip/_internal/req/req_file.py` and `req/constructors.py`), the file decoded as pip decodes it
(`decode`: a byte-order mark, else a PEP 263 coding line, else UTF-8); each one becomes:

- comments (`# ...`, also trailing), blank lines, `\\` continuations, surrounding whitespace:
  dropped;
- `name[extras] specifiers ; markers` (PEP 508): re-written by `packaging` (name in PEP 503
  form, extras and specifiers sorted, markers in canonical spacing);
- `name @ URL` (PEP 508): kept; a bare URL with `#egg=name` (VCS or archive) becomes
  `name @ URL`, other fragments kept; a bare archive URL without `#egg=` is named from its file
  name; a bare VCS URL without `#egg=` is kept as is (pip and uv build it to learn its name);
- `--hash=ALGO:DIGEST` and `-C/--config-settings` after a requirement: kept, sorted;
- a local path (`./vendor/pkg`, `dist/pkg-1.0-py3-none-any.whl`, with optional `[extras]`
  and `; markers`), relative to the folder of the environment file (where MLflow runs pip):
  must stay inside the codeset; it is shipped into the build context (under `codeset/`) and
  installed from there, so its content is part of the tag;
- `-r FILE`: FILE's normalised lines, inline (relative to the file naming it);
- `-c FILE`: FILE's normalised lines go to one shipped `constraints.txt`, named by a
  `-c constraints.txt` line: the constraints apply, and an edit to them changes the tag;
- option lines (`--index-url U`, `-f DIR`, `--pre`, ... every option pip accepts in a
  requirements file): kept, with the option's long name and one space; `-f` to a folder of
  the codeset ships the folder; uv gets their meaning from `uv_options`;
- refused, with what to write instead: `-e` (an editable install links to source that is not
  in the image), `${VAR}` (pip expands it from the build's environment), `file:` URLs and
  paths outside the codeset, `-r`/`-c` of a URL, options pip does not accept in a
  requirements file, options on a requirement line that pip ignores, `--trusted-host` (only
  the builder's own `pip_trusted_host` input may lower TLS for a host), and the options uv
  cannot be given pip's meaning of (`uv_options.refusal`: `--prefer-binary`,
  `--use-feature`, `--config-settings`).

The resulting lines are sorted and de-duplicated: line order never changes the tag. Every file
opened resolves inside the codeset first (`inside.py`); a message quotes at most the one line
it is about, and only from a file inside the codeset.
"""

from __future__ import annotations

import codecs
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from ...problems import StepError
from ..planning import hash_pins
from ..planning.indexes import NETRC_ENV
from . import limits, uv_options
from .inside import ADVICE, outside, refusal

MLFLOW_DISTRIBUTIONS = {"mlflow", "mlflow-skinny"}
SHIPPED_DIR = "codeset"  # path requirements and -f folders, under the staging folder
CONSTRAINTS_FILE = "constraints.txt"
_COMMENT = re.compile(r"(^|\s)#.*$")
# pip 26.3 req_file.ENV_VAR_RE: `${NAME}` is expanded from the installer's environment.
_ENV_VAR = re.compile(r"\$\{[A-Z0-9_]+\}")
# pip 26.3 req_file.SUPPORTED_OPTIONS: spelling -> long name; value options take one argument.
VALUE_OPTIONS = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--pypi-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-c": "--constraint",
    "--constraint": "--constraint",
    "-r": "--requirement",
    "--requirement": "--requirement",
    "-e": "--editable",
    "--editable": "--editable",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "--no-binary": "--no-binary",
    "--only-binary": "--only-binary",
    "--all-releases": "--all-releases",
    "--only-final": "--only-final",
    "--trusted-host": "--trusted-host",
    "--use-feature": "--use-feature",
}
FLAG_OPTIONS = {
    "--no-index",
    "--prefer-binary",
    "--require-hashes",
    "--no-require-hashes",
    "--pre",
}
# pip 26.3 req_file.SUPPORTED_OPTIONS_REQ: options of one requirement line.
REQUIREMENT_OPTIONS = {
    "--hash": "--hash",
    "-C": "--config-settings",
    "--config-settings": "--config-settings",
}
# pip 26.3 req_file.BOMS, in its order (a UTF-16 LE BOM is a prefix of the UTF-32 LE one), and
# PEP263_ENCODING_RE, looked for in the first two lines.
BOMS = [
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF16, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
]
PEP263_ENCODING = re.compile(rb"coding[:=]\s*([-\w.]+)")
VCS_SCHEMES = ("git+", "hg+", "svn+", "bzr+")
ARCHIVE_SUFFIXES = (  # pip 26.3 utils/filetypes.ARCHIVE_EXTENSIONS
    ".whl", ".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz",
    ".tar.xz", ".txz", ".tlz", ".tar.lz", ".tar.lzma",
)  # fmt: skip
SKIPPED_IN_FOLDERS = {".git", "__pycache__", ".mypy_cache", ".pytest_cache"}


class LineError(Exception):
    """One line pip would not read, or that cannot reach an image: what to write instead."""


@dataclass
class Requirements:
    """The normal form of some requirement lines, and the files their install needs.

    `lines`: sorted, de-duplicated requirement and option lines (what the tag hashes);
    `constraints`: the normal form of every `-c` file, merged (shipped as constraints.txt);
    `shipped`: path relative to the staging folder -> bytes, for the build context.
    """

    lines: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    shipped: dict[str, bytes] = field(default_factory=dict)
    constraints_file: str = CONSTRAINTS_FILE

    def install_lines(self) -> list[str]:
        """The lines of the file the installer reads: `-c constraints.txt` when any; sorted,
        but `--index-url` and `--no-index` first: pip reads a file's lines in order, and
        either one drops the index URLs read before it (`req_file.handle_option_line`)."""
        extra = [f"-c {self.constraints_file}"] if self.constraints else []
        return sorted([*self.lines, *extra], key=index_first)

    def files(self) -> dict[str, bytes]:
        """Everything to ship next to the installer's requirements file."""
        files = dict(self.shipped)
        if self.constraints:
            files[self.constraints_file] = ("\n".join(self.constraints) + "\n").encode()
        return files


def decode(data: bytes) -> str:
    """A requirements file's text as pip 26.3 decodes it (`req_file._decode_req_file`): a
    byte-order mark names the encoding (and is dropped: PowerShell's `pip freeze >` writes
    UTF-16 LE with one), else a PEP 263 `# -*- coding: NAME -*-` comment in the first two
    lines, else UTF-8. Where pip falls back to the installing machine's locale, this raises
    UnicodeDecodeError saying what to write instead: the tag cannot follow a locale.
    Raises LookupError for a coding line naming an unknown encoding."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding)
    for line in data.split(b"\n")[:2]:
        if line[0:1] == b"#":
            found = PEP263_ENCODING.search(line)
            if found is not None:
                name = found[1].decode("ascii")
                try:
                    return data.decode(name)
                except LookupError:
                    raise LookupError(
                        f"its coding line names {name!r}, which is no encoding Python knows; "
                        "name one such as utf-8 or latin-1"
                    ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnicodeDecodeError(
            exc.encoding, exc.object, exc.start, exc.end,
            f"not UTF-8 (byte {exc.start + 1}), no byte-order mark and no coding line, where "
            "pip would use the installing machine's locale; save it as UTF-8 or add a first "
            "line `# -*- coding: latin-1 -*-` naming its encoding",
        ) from None  # fmt: skip


def index_first(line: str) -> tuple[bool, str]:
    """Sort key: `--index-url` and `--no-index` lines before the others."""
    return (not line.startswith(("--index-url ", "--no-index")), line)


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) with comments stripped and `\\` continuations joined."""
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw).strip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = (pending + line).strip(), ""
        if line:
            lines.append((start, line))
    if pending.strip():
        lines.append((start, pending.strip()))
    return lines


def split_args_options(line: str) -> tuple[str, list[str]]:
    """pip's `break_args_options`: the requirement part (up to the first token starting with
    `-`) and the option tokens (shell-split)."""
    tokens = line.split(" ")
    for index, token in enumerate(tokens):
        if token.startswith("-"):
            try:
                options = shlex.split(" ".join(tokens[index:]))
            except ValueError as exc:
                raise LineError(f"cannot split its options ({exc}); close the quote") from None
            return " ".join(tokens[:index]).strip(), options
    return line.strip(), []


def parse_options(
    tokens: list[str], table: dict[str, str], flags: set[str]
) -> list[tuple[str, str]]:
    """[(long name, value)] as optparse reads them: `--opt=V`, `--opt V`, `-oV`, `-o V`, and
    unambiguous abbreviations of long names."""
    out: list[tuple[str, str]] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        value: str | None = None
        if token.startswith("--"):
            name, sep, given = token.partition("=")
            name = full_option_name(name, [*table, *flags])
            value = given if sep else None
        else:
            name, given = token[:2], token[2:]
            value = given or None
        if name in flags:
            if value is not None:
                raise LineError(f"`{name}` takes no value")
            out.append((name, ""))
        elif name in table:
            if value is None:
                index += 1
                if index >= len(tokens):
                    raise LineError(f"`{name}` needs a value")
                value = tokens[index]
            # -r/-c files are read by the builder itself (pip's own reading of the quoted
            # value); every other value is written into the file the installer reads.
            if table[name] not in ("--requirement", "--constraint"):
                single_token(name, value)
            out.append((table[name], value))
        elif flags and name in REQUIREMENT_OPTIONS:
            raise LineError(f"has `{name}` without a requirement; put it after the requirement")
        elif flags or (name not in VALUE_OPTIONS and name not in FLAG_OPTIONS):
            raise LineError(
                f"has `{name}`, which pip 26.3 does not read in a requirements file (it reads "
                f"{', '.join(sorted({*VALUE_OPTIONS.values(), *FLAG_OPTIONS}))}; and after a "
                "requirement, --hash and --config-settings); remove it"
            )
        else:
            raise LineError(
                f"has `{name}` after a requirement, where pip ignores it; put it on a line of "
                "its own"
            )
        index += 1
    return out


def single_token(name: str, value: str) -> str:
    """`value` when the file the installer reads can hold it as written: pip splits an option
    line again with shlex (`break_args_options`), so a value with whitespace, a quote or a
    backslash would become other options there (`--index-url "U -r /abs/file"` reads the
    file) and uv reads it differently again. Raises LineError."""
    if not value or re.search(r"[\s'\"\\]", value) or shlex.split(value) != [value]:
        raise LineError(
            f"gives `{name}` the value {value!r}, which holds whitespace, a quote or a "
            "backslash: pip would split it into more options; write one value without them"
        )
    return value


def full_option_name(name: str, known: list[str]) -> str:
    if name in known:
        return name
    matches = sorted({k for k in known if k.startswith(name) and k.startswith("--")})
    return matches[0] if len(matches) == 1 else name


class Reader:
    """Reads requirement lines of one environment file of the codeset at `root`.

    `env_dir` is the folder paths are relative to (the environment file's: where MLflow and
    conda run pip). Problems are collected in `problems`, each naming its file and line.
    """

    def __init__(self, root: Path, env_dir: Path, problems: list[str]) -> None:
        self.root = root
        self.env_dir = env_dir
        self.problems = problems
        self.result = Requirements()
        self._lines: set[str] = set()
        self._constraints: set[str] = set()

    def finish(self, where: str) -> Requirements:
        indexes = {
            line for line in self._lines | self._constraints if line.startswith("--index-url ")
        }
        if len(indexes) > 1:  # the URLs are not quoted: one may hold a credential
            self.problems.append(
                f"{where}: names {len(indexes)} different --index-url values (with the files it "
                "includes); pip uses the last one it reads and uv refuses more than one: keep "
                "one and name the others with --extra-index-url"
            )
        self.result.lines = sorted(self._lines)
        self.result.constraints = sorted(self._constraints)
        self.problems.extend(
            hash_pins.hash_mode_problems(
                self.result.lines, self.result.constraints, self.result.shipped, where
            )
        )
        return self.result

    # --- files ---------------------------------------------------------------------------------

    def read_file(
        self, path: Path, shown: str, constraint: bool, seen: frozenset = frozenset()
    ) -> None:
        """Read the file at `path` (written `shown` in the codeset), once, if inside the root."""
        why = outside(self.root, path, shown)
        if why:
            self.problems.append(refusal(shown, why))
            return
        real = path.resolve()
        if real in seen:
            self.problems.append(f"{shown}: includes itself through -r/-c; remove the cycle")
            return
        why = limits.regular_problem(real, shown)
        if not why and real.stat().st_size > limits.TEXT_FILE:
            why = limits.too_large(shown, limits.TEXT_FILE)
        if why:
            self.problems.append(why)
            return
        kind = "constraints" if constraint else "requirements"
        try:
            text = decode(real.read_bytes())
        except OSError as exc:
            self.problems.append(
                f"{shown}: cannot be read as a {kind} file ({exc.__class__.__name__}); "
                "check the -r/-c paths"
            )
            return
        except (UnicodeDecodeError, LookupError) as exc:
            self.problems.append(f"{shown}: cannot be read as a {kind} file: {exc}")
            return
        self.read_lines(logical_lines(text), shown, real.parent, constraint, seen | {real})

    def read_lines(
        self,
        lines: list[tuple[int, str]],
        where: str,
        base_dir: Path,
        constraint: bool = False,
        seen: frozenset = frozenset(),
    ) -> None:
        """Lines (already free of comments) of `where`; includes are relative to `base_dir`."""
        for number, line in lines:
            try:
                self.read_line(line, base_dir, constraint, seen)
            except LineError as exc:
                self.problems.append(f"{where} line {number}: `{line}` {exc}")

    def read_line(self, line: str, base_dir: Path, constraint: bool, seen: frozenset) -> None:
        if _ENV_VAR.search(line):
            raise LineError(
                "names an environment variable, which pip and uv would expand at install time "
                "from the build's environment, so the tag could not follow it; a credential "
                "never goes into the codeset: give the index URL without it as the builder's "
                "--pip-index-url or --pip-extra-index-url input, and its login and token as "
                f"netrc text (machine HOST login USER password TOKEN) in {NETRC_ENV}, which "
                "the generated workflows fill from the key `netrc` of the index Secret "
                "(input index_secret, default index-credentials); any other value: write it "
                "itself"
            )
        args, options = split_args_options(line)
        target = self._constraints if constraint else self._lines
        if args:
            target.add(self.requirement(args, options, constraint))
            return
        for name, value in parse_options(options, VALUE_OPTIONS, FLAG_OPTIONS):
            if uv_options.refusal(name, value):
                raise LineError(uv_options.refusal(name, value))
            if name == "--trusted-host":
                raise LineError(trusted_host_advice(value))
            if name in ("--requirement", "--constraint"):
                self.include(name, value, base_dir, constraint, seen)
            elif name == "--editable":
                raise LineError(editable_advice(value))
            elif name == "--find-links" and "://" not in value:
                target.add(f"--find-links {self.ship_path(value, base_dir)}")
            else:
                target.add(f"{name} {value}".strip())

    def include(
        self, name: str, value: str, base_dir: Path, constraint: bool, seen: frozenset
    ) -> None:
        if "://" in value or value.startswith("file:"):
            raise LineError(
                f"names a URL: the builder does not fetch {name} files, so the tag could not "
                "follow their content; download the file into the codeset and name it by a "
                "relative path"
            )
        self.check_inside(base_dir / value, value)
        # pip: -r in a constraints file adds requirements, -c adds constraints.
        path = (base_dir / value).resolve()
        self.read_file(path, self.shown(path), name == "--constraint", seen)

    def check_inside(self, path: Path, written: str) -> None:
        why = outside(self.root, path, written)
        if why:
            raise LineError(f"names {written}, which {why}, outside the codeset; {ADVICE}")

    # --- requirements --------------------------------------------------------------------------

    def requirement(self, args: str, options: list[str], constraint: bool) -> str:
        parsed = parse_options(options, REQUIREMENT_OPTIONS, set())
        for name, value in parsed:
            if uv_options.refusal(name, value):
                raise LineError(uv_options.refusal(name, value))
        extra = [f"{n}={v}" for n, v in parsed]
        head = self.requirement_head(args, constraint)
        if any(n == "--config-settings" for n, _ in parsed) and requirement_name(head) is None:
            raise LineError(
                "has --config-settings on a requirement without a name, which uv (it installs "
                "for Python >= 3.8) can pass to a named package only; write it as "
                "`NAME @ URL --config-settings KEY=VALUE`, or build the wheel and ship it"
            )
        return " ".join([head, *sorted(extra)])

    def requirement_head(self, args: str, constraint: bool) -> str:
        if is_url(args.split(";")[0].strip().split(" ")[0]):
            return url_requirement(args, constraint)
        path, extras, marker = split_path_requirement(args)
        if looks_like_path(path) and not is_pep508_url(path):
            if constraint:
                raise LineError(
                    "is a path in a constraints file; pip allows only named requirements "
                    "there (name==version)"
                )
            return self.ship_path(path, self.env_dir) + extras + (f"; {marker}" if marker else "")
        if args.startswith("file:") or " @ file:" in args:
            raise LineError(file_url_advice())
        return normalise_requirement(args)

    def ship_path(self, written: str, base_dir: Path) -> str:
        """Copy the file or folder `written` (relative to `base_dir`) into the shipped files;
        returns the path the installer reads it at."""
        path = base_dir / written
        self.check_inside(path, written)
        real = path.resolve()
        if not real.exists():
            raise LineError(f"names {written}, which does not exist in the codeset")
        if real.is_dir():
            self.ship_folder(real)
        else:
            self.result.shipped[self.shipped_name(real)] = self.read_shipped(real, written)
        return "./" + self.shipped_name(real)

    def ship_folder(self, folder: Path) -> None:
        for path in sorted(folder.rglob("*")):
            if SKIPPED_IN_FOLDERS & set(path.relative_to(folder).parts) or path.suffix == ".pyc":
                continue
            relative = self.shown(path)
            why = outside(self.root, path, relative)
            if why:
                raise LineError(f"holds {relative}, which {why}, outside the codeset; {ADVICE}")
            if not path.is_dir():
                self.result.shipped[self.shipped_name(path.resolve())] = self.read_shipped(
                    path, relative
                )

    def read_shipped(self, path: Path, shown: str) -> bytes:
        """A regular file of the codeset (no FIFO, device or socket), within the limit."""
        try:
            return limits.read_bytes(path, shown, limits.SHIPPED_FILE)
        except StepError as exc:
            raise LineError(f"names {exc}") from None

    def shipped_name(self, real: Path) -> str:
        return f"{SHIPPED_DIR}/{real.relative_to(self.root.resolve()).as_posix()}"

    def shown(self, path: Path) -> str:
        """A path of the codeset as the user knows it (relative to the root when it can be)."""
        try:
            return Path(*Path(path).absolute().relative_to(self.root.absolute()).parts).as_posix()
        except ValueError:
            return str(path)


def editable_advice(value: str) -> str:
    if is_url(value):
        name = egg_name(value)
        instead = f"`{name} @ {strip_egg(value)}`" if name else f"`NAME @ {strip_egg(value)}`"
    else:
        instead = f"`{value}` (the folder is copied into the build and installed)"
    return (
        "is an editable install, which links to source that is not in the image (the codeset "
        f"is mounted at /project only when the step runs); write {instead} instead"
    )


def trusted_host_advice(value: str) -> str:
    """Why a codeset may not say `--trusted-host`: pip 26.3 then takes that host (every port,
    when none is given) over plain HTTP and without checking its TLS certificate, for every
    index and link on it (`PipSession.add_trusted_host`), so the credentials of an index you
    configured on that host would cross unchecked. Only you decide that."""
    return (
        f"marks {value} as a trusted host, which pip takes to mean: plain HTTP and no TLS "
        "certificate check for every index and link on that host, so an index's credentials "
        "would be sent there unchecked; a codeset cannot decide that for the indexes you "
        "configure. Remove the line; if you trust the host, give it as the builder's "
        "--pip-trusted-host input (the step input pip_trusted_host)"
    )


def file_url_advice() -> str:
    return (
        "is a file: URL, which names a path on the machine that installs it, outside the "
        "codeset; put the package inside the codeset and name it by a relative path, e.g. "
        "./vendor/pkg"
    )


def is_url(text: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text)) or text.startswith("file:")


def is_pep508_url(text: str) -> bool:
    """`name @ URL`: pip reads a line with `@` as PEP 508 when what precedes it is no path."""
    head, at, _ = text.partition("@")
    return bool(at) and not looks_like_path(head.strip())


def looks_like_path(text: str) -> bool:
    """pip's `_looks_like_path` (a separator, or a leading `.`), or an archive file name."""
    return "/" in text or text.startswith(".") or text.lower().endswith(ARCHIVE_SUFFIXES)


def split_path_requirement(args: str) -> tuple[str, str, str]:
    """`./pkg[a,b] ; marker` -> ("./pkg", "[a,b]", "marker"), as pip splits a non-URL line."""
    path, _, marker = args.partition(";")
    path = path.strip()
    extras = re.search(r"(\[[^\]]+\])$", path)
    if extras:
        path = path[: extras.start()]
    return path, extras[1].replace(" ", "") if extras else "", marker.strip()


def egg_name(url: str) -> str:
    fragment = urlsplit(url).fragment
    for part in fragment.split("&"):
        key, _, value = part.partition("=")
        if key == "egg" and value:
            return value
    return ""


def strip_egg(url: str) -> str:
    base, _, fragment = url.partition("#")
    kept = [p for p in fragment.split("&") if p and not p.startswith("egg=")]
    return base + ("#" + "&".join(kept) if kept else "")


def url_requirement(args: str, constraint: bool) -> str:
    """A bare URL line: `URL#egg=name ; marker` -> `name @ URL ; marker` (pip's reading)."""
    url, sep, marker = args.partition("; ")
    url = url.strip()
    if url.startswith("file:"):
        raise LineError(file_url_advice())
    name = egg_name(url)
    if not name:
        filename = urlsplit(url).path.rsplit("/", 1)[-1]
        try:
            if filename.endswith(".whl"):
                name = str(parse_wheel_filename(filename)[0])
            elif not url.startswith(VCS_SCHEMES):
                name = str(parse_sdist_filename(filename)[0])
        except (InvalidWheelFilename, InvalidSdistFilename):
            name = ""
    if not name:
        if constraint:
            raise LineError("is a URL without a name; constraints need one: name @ URL")
        if url.startswith(VCS_SCHEMES):
            return url + (f"; {marker.strip()}" if marker.strip() else "")
        raise LineError(f"is a URL pip cannot name; write it as `NAME @ {url}`")
    return normalise_requirement(f"{name} @ {strip_egg(url)}" + (f" ; {marker}" if sep else ""))


def normalise_requirement(text: str) -> str:
    """One PEP 508 requirement in canonical form; raises LineError."""
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]  # packaging repeats the line below: quote it once
        raise LineError(f"is not a valid requirement ({reason}); see PEP 508") from None
    if req.url and req.url.startswith("file:"):
        raise LineError(file_url_advice())
    out: str = canonicalize_name(req.name)
    if req.extras:
        out += "[" + ",".join(sorted(canonicalize_name(e) for e in req.extras)) + "]"
    if req.url:
        out += " @ " + req.url
    elif req.specifier:
        out += ",".join(sorted(str(s) for s in req.specifier))
    if req.marker:
        out += ("; " if req.url is None else " ; ") + str(req.marker)
    return out


def read_requirements_file(path: Path, root: Path, problems: list[str]) -> Requirements:
    """requirements.txt at `path`, every file it names inside `root`: includes are relative to
    the file that names them, paths to the requirements.txt's folder (the codeset's: pip's
    working directory when MLflow runs it)."""
    reader = Reader(root, path.parent, problems)
    reader.read_file(path, reader.shown(path), constraint=False)
    return reader.finish(reader.shown(path))


def read_requirement_list(
    lines: list[str],
    where: str,
    base_dir: Path,
    root: Path,
    problems: list[str],
    constraints_file: str = CONSTRAINTS_FILE,
) -> Requirements:
    """A list of requirement lines (python_env.yaml's, conda.yaml's `pip:`), read as the one
    requirements file their tool writes in `base_dir`: MLflow 3.17 writes python_env.yaml's
    in the project's root (`utils/virtualenv.py`), conda writes the `pip:` list's next to the
    conda.yaml. Includes and paths are relative to `base_dir`."""
    reader = Reader(root, base_dir, problems)
    reader.result.constraints_file = constraints_file or CONSTRAINTS_FILE
    reader.read_lines(
        [(n, line) for n, text in enumerate(lines, start=1) for _, line in logical_lines(text)],
        where,
        base_dir,
    )
    return reader.finish(where)


def requirement_name(line: str) -> str | None:
    """The canonical name a normalised requirement line installs; None for options, paths
    and unnamed URLs."""
    if line.startswith(("-", ".")) or is_url(line.split(" ")[0]):
        return None
    try:
        return canonicalize_name(Requirement(line.split(" --")[0]).name)
    except InvalidRequirement:
        return None


def names(lines: list[str]) -> set[str]:
    return {name for line in lines if (name := requirement_name(line))}


def mentions_mlflow(lines: list[str]) -> bool:
    return bool(names(lines) & MLFLOW_DISTRIBUTIONS)

"""The meaning pip gives a requirements file's options, given to uv.

uv installs a venv environment when the interpreter is Python >= 3.8 (images and the local
engine), pip otherwise; both must install the same thing from the same file. uv 0.13 reads
only some of pip's requirement-file options (`uv-requirements-txt`): it ignores `--pre`,
`--prefer-binary`, `--trusted-host` and `--use-feature` with a warning, fails on
`--all-releases`, `--only-final`, `--no-require-hashes` and a requirement's
`--config-settings`, and lets its environment (`UV_INDEX_URL`) win over a file's
`--index-url`, where pip lets the file win. So, for each normalised requirement set
(`requirements.py` form: long option names, one space before the value):

- `--index-url U`, `--no-index`: kept; the builder's own index settings (UV_INDEX_URL,
  UV_EXTRA_INDEX_URL) are not given to uv, as pip drops them (`req_file.handle_option_line`);
- `--extra-index-url`, `--find-links`, `--no-binary`, `--only-binary`, `--require-hashes`,
  `--hash`, `-c`: kept, uv reads them;
- `--pre`, `--all-releases :all:`: `--prerelease=allow`; `--all-releases A,B`:
  `--prerelease-package=A=allow` per name;
- `--only-final :all:`: `--prerelease=disallow`; `--only-final A,B`:
  `--prerelease-package=A=disallow` per name;
- `--trusted-host H`: `--allow-insecure-host=H` (`requirements.py` refuses it in a codeset's
  file: only the builder's `pip_trusted_host` input may lower TLS for a host);
- `--no-require-hashes`: dropped (uv never turns hash-checking on by itself);
- `NAME ... --config-settings=K=V` (a requirement's): `--config-settings-package=NAME:K=V`,
  the option taken off the line uv reads (`requirements.py` refuses it on a requirement
  without a name: a path or a URL);
- `--prefer-binary`, `--use-feature`, a `:none:` value: refused at `inspect` (`refusal`),
  saying what to write instead.

Several indexes: pip takes the best version found on any of them; uv's default takes the first
index that has the package. Every uv call uses `--index-strategy unsafe-best-match`, pip's rule
(`INDEX_STRATEGY`), so one tag means one environment, whichever installer runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

INDEX_STRATEGY = "unsafe-best-match"
# The builder's index settings as uv reads them from its environment.
UV_INDEX_ENV = ("UV_INDEX_URL", "UV_EXTRA_INDEX_URL")


@dataclass(frozen=True)
class UvInstall:
    """What uv reads for one requirement set: `args` for its command line, `lines` for its
    requirements file, and `own_index`: the lines name the index (`--index-url`, `--no-index`),
    so the builder's index settings must not reach uv."""

    args: tuple[str, ...]
    lines: tuple[str, ...]
    own_index: bool


def uv_install(lines: list[str] | tuple[str, ...]) -> UvInstall:
    """The uv form of normalised requirement lines (see the module's table)."""
    args = [f"--index-strategy={INDEX_STRATEGY}"]
    kept: list[str] = []
    own_index = False
    for line in lines:
        name, _, value = line.partition(" ") if line.startswith("--") else (line, "", "")
        if name in ("--index-url", "--no-index"):
            own_index = True
        if name == "--pre":
            args.append("--prerelease=allow")
        elif name in ("--all-releases", "--only-final"):
            mode = "allow" if name == "--all-releases" else "disallow"
            if value == ":all:":
                args.append(f"--prerelease={mode}")
            else:
                args += [f"--prerelease-package={n}={mode}" for n in value.split(",") if n]
        elif name == "--trusted-host":
            args.append(f"--allow-insecure-host={value}")
        elif " --config-settings=" in line:
            line, settings = without_config_settings(line)
            project = canonicalize_name(Requirement(line.split(" --")[0]).name)
            args += [f"--config-settings-package={project}:{value}" for value in settings]
            kept.append(line)
        elif name != "--no-require-hashes":
            kept.append(line)
    return UvInstall(tuple(args), tuple(kept), own_index)


def without_config_settings(line: str) -> tuple[str, list[str]]:
    """A normalised requirement line without its `--config-settings=K=V` options, and their
    `K=V` values."""
    tokens = line.split(" ")
    settings = [t.partition("=")[2] for t in tokens if t.startswith("--config-settings=")]
    kept = [t for t in tokens if not t.startswith("--config-settings=")]
    return " ".join(kept), settings


def refusal(name: str, value: str) -> str:
    """Why an option pip reads in a requirements file cannot be given its meaning by uv, and
    what to write instead ("" when it can)."""
    uv = "uv, which installs the environment for Python >= 3.8,"
    if name == "--prefer-binary":
        return (
            f"asks for pip's prefer-binary choice (an older version that has a wheel over a "
            f"newer one that must be built), which {uv} cannot make; pin that version "
            "(NAME==X.Y) or write `--only-binary NAME` instead"
        )
    if name == "--use-feature":
        return f"enables the pip feature {value!r}, which {uv} does not have; remove the line"
    if name in ("--all-releases", "--only-final") and ":none:" in value.split(","):
        return (
            f"uses :none:, which empties what earlier {name} lines set, and which uv cannot "
            "follow; remove the line and the lines it undoes"
        )
    return ""

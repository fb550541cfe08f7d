"""conda.yaml without conda (`env_manager=uv`): conda dependencies as PyPI requirements.

MLflow's own conversion (`--env-manager virtualenv`/`uv`) keeps `python=` and the `pip:` list
and silently drops every other conda dependency. This one keeps them:

- `python=3.10` / `python==3.10.4` / `python 3.10` picks the Python version (major.minor);
- `pip`, `setuptools` and `wheel` are build tools, installed first (with their pins);
- every other package becomes a requirement under its PyPI name (`RENAMES`), its conda
  version turned into a PEP 440 specifier: `=1.2`, `=1.2.*`, `1.2*` and `=1.2=build` become
  `==1.2.*`; `1.2`, `==1.2` and `1.2 build` become `==1.2`; ranges (`>=1.2,<2`) are kept;
  `1.2|1.3` is refused; build strings and channel prefixes (`conda-forge::`) are dropped;
- packages that only exist on conda channels (`CONDA_ONLY`) are refused, all at once, with
  the Debian package that provides the same library where one is known;
- the `pip:` list is installed as is, after the converted packages;
- channels are ignored (noted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ...problems import StepError

# conda name -> PyPI name, where they differ.
RENAMES = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost",
    "py-lightgbm": "lightgbm",
    "py-opencv": "opencv-python",
    "opencv": "opencv-python",
    "matplotlib-base": "matplotlib",
    "msgpack-python": "msgpack",
    "pytables": "tables",
    "python-graphviz": "graphviz",
    "tensorflow-base": "tensorflow",
    "pyqt": "PyQt5",
}
BUILD_TOOLS = ("pip", "setuptools", "wheel")
# Conda-only packages (native libraries and toolchains; no PyPI equivalent) -> the Debian
# package that provides the same thing in the image, where there is one ("" where none is).
CONDA_ONLY = {
    "cudatoolkit": "",
    "cudnn": "",
    "nccl": "",
    "mkl": "",
    "mkl-service": "",
    "mkl_fft": "",
    "mkl_random": "",
    "intel-openmp": "libgomp1",
    "libgcc-ng": "libgcc-s1",
    "libstdcxx-ng": "libstdc++6",
    "libgomp": "libgomp1",
    "_libgcc_mutex": "",
    "_openmp_mutex": "libgomp1",
    "llvm-openmp": "libomp5",
    "ld_impl_linux-64": "",
    "blas": "libopenblas0",
    "libblas": "libopenblas0",
    "libcblas": "libopenblas0",
    "liblapack": "liblapack3",
    "openblas": "libopenblas0",
    "libopenblas": "libopenblas0",
    "libffi": "libffi8",
    "openssl": "libssl3",
    "ca-certificates": "ca-certificates",
    "readline": "libreadline8",
    "ncurses": "libncursesw6",
    "tk": "libtk8.6",
    "xz": "liblzma5",
    "zlib": "zlib1g",
    "bzip2": "libbz2-1.0",
    "sqlite": "libsqlite3-0",
    "libuuid": "libuuid1",
    "ffmpeg": "ffmpeg",
    "graphviz": "graphviz",
    "libgfortran-ng": "libgfortran5",
    "libgfortran5": "libgfortran5",
    "libopencv": "",
    "magma": "",
}
CONDA_ONLY_PREFIXES = ("cuda-", "libcu", "libnv", "r-")
_SPEC = re.compile(r"^(?:(?P<channel>[^:\s]+)::)?(?P<name>[A-Za-z0-9_.\-]+)\s*(?P<rest>.*)$")
_BRACKET = re.compile(r"\[(?P<body>[^\]]*)\]\s*$")
_OPERATOR = re.compile(r"^(==|>=|<=|!=|~=|>|<)")


@dataclass
class PypiEnvironment:
    """What a conda.yaml installs from the index with env_manager=uv."""

    python: str  # the Python the file names (major.minor for conda.yaml), "" for none
    build_dependencies: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def convert(
    where: str, channels: list[str], dependencies: list[str], pip: list[str]
) -> PypiEnvironment:
    """The conda dependencies of a conda.yaml (`where`, normalised by `CondaEnv`) as PyPI
    requirements, followed by its `pip` list; every problem raised at once (StepError)."""
    problems: list[str] = []
    conda_only: list[str] = []
    python = ""
    build: list[str] = []
    requirements: list[str] = []
    for spec in dependencies:
        parsed = _SPEC.match(spec.strip())
        if not parsed:
            problems.append(f"{where}: `{spec}` is not a conda package spec")
            continue
        name = parsed["name"].lower()
        try:
            if name == "python":
                python = python_version(parsed["rest"])
                continue
            specifier = conda_version(parsed["rest"])
        except ValueError as exc:
            problems.append(f"{where}: `{spec}`: {exc}")
            continue
        if name in CONDA_ONLY or name.startswith(CONDA_ONLY_PREFIXES):
            conda_only.append(name)
            continue
        requirement = canonicalize_name(RENAMES.get(name, name)) + specifier
        (build if name in BUILD_TOOLS else requirements).append(requirement)
    if conda_only:
        problems.append(conda_only_problem(where, conda_only))
    if problems:
        raise StepError(problems)
    notes = []
    if channels:
        notes.append(
            f"{where}: channels ({', '.join(channels)}) are ignored with env_manager=uv; "
            "packages come from the pip index"
        )
    return PypiEnvironment(
        python=python,
        build_dependencies=sorted(set(build)),
        dependencies=sorted(set(requirements)) + list(pip),
        notes=notes,
    )


def conda_version(rest: str) -> str:
    """The version part of a conda spec (`=1.2`, `1.2 py_0`, `>=1.2,<2`, `[version='>=1']`) as
    a PEP 440 specifier ("" for any version); raises ValueError for what pip cannot express."""
    text = rest.strip()
    bracket = _BRACKET.search(text)
    if bracket:
        keys = dict(
            (k.strip(), v.strip().strip("'\""))
            for k, _, v in (item.partition("=") for item in bracket["body"].split(","))
        )
        text = text[: bracket.start()].strip() or keys.get("version", "")
    if not text or text == "*":
        return ""
    if "|" in text:
        raise ValueError("`|` (either version) has no pip equivalent; pin one version range")
    if text.startswith("=") and not text.startswith("=="):
        version = text[1:].split("=", 1)[0]  # `=1.2=build`: the build string goes
        return prefix_pin(version)
    version = text.split()[0]  # `1.2 build`: the build string goes
    if _OPERATOR.match(version):
        try:
            return str(SpecifierSet(version))
        except InvalidSpecifier:
            raise ValueError(f"`{version}` is not a version range pip understands") from None
    if version.endswith("*"):
        return prefix_pin(version)
    return "==" + checked(version)


def prefix_pin(version: str) -> str:
    """conda `=1.2` / `1.2*` / `1.2.*` -> `==1.2.*`."""
    stem = version.rstrip("*").rstrip(".")
    return f"=={checked(stem)}.*"


def checked(version: str) -> str:
    try:
        Version(version)
    except InvalidVersion:
        raise ValueError(f"`{version}` is not a version pip understands") from None
    return version


def python_version(rest: str) -> str:
    """The Python of `python=3.10`, `python==3.10.4`, `python>=3.10`, `python<=3.10` or
    `python 3.10` as major.minor, as MLflow reads it (a bound is taken as the version);
    MLflow's own rejections are kept: no version at all, and `<`, `>` or `!=`."""
    match = re.fullmatch(
        r"(?P<op><=|>=|==|=|<|>|!=)?\s*(?P<major>\d+)\.(?P<minor>\d+)[\d.*]*", rest
    )
    if not match:
        raise ValueError("pin python to a version (python=3.11), as MLflow requires")
    if match["op"] in ("<", ">", "!="):
        raise ValueError(
            f"`{match['op']}` is not a Python version MLflow accepts; use =, ==, >= or <="
        )
    return f"{match['major']}.{match['minor']}"


def conda_only_problem(where: str, names: list[str]) -> str:
    hints = sorted({CONDA_ONLY.get(n, "") for n in names} - {""})
    debian = f' (Debian packages: system_packages="{" ".join(hints)}")' if hints else ""
    return (
        f"{where}: {', '.join(sorted(set(names)))} exist only on conda channels, not on PyPI; "
        "build with env_manager=conda, or remove them and install the system libraries "
        f"they provide with system_packages{debian}"
    )

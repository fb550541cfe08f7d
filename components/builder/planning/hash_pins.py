"""The hashes the user pinned are the identity of what is installed.

A requirements file hashed on every line (`--hash=sha256:...`, pip's hash-checking mode) names
the only files the user accepts for each distribution. pip and uv check them when they install;
the per-package build must check them too when a layer is not installed but reused from the
registry (mounted): a layer's identity names the sha256 of the wheel it was made from
(`layered.units.identity`), so comparing that wheel hash with the pins is enough.

`pinned_hashes(plan)` reads the pins; `check_pins(pins, pinned)` raises StepError naming every
distribution whose wheel is not among its pinned hashes.

pip's hash-checking mode (pip 26.3, `cli/req_command.py` `get_requirements` and
`operations/prepare.py` `_get_linked_req_hashes`): it is on when a file says `--require-hashes`
or when any requirement or constraint carries a `--hash` (unless `--no-require-hashes`); then
every requirement must carry a hash, and every one that is not a direct reference must be
pinned with `==` or `===`; a VCS URL or a directory cannot be hashed at all. pip checks this
as it downloads each distribution, transitive ones included. `hash_mode_problems(...)` applies
the same rule to a file's own requirements when it is read, so a file with some hashes and some
without fails at `inspect` and `build` before anything is downloaded; the per-package and
engine-less paths resolve each hashed set alone and name what it pulls in without a hash
(`hash_mode_sets`, `unhashed`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ...problems import StepError

if TYPE_CHECKING:  # plan.py reads requirement files, which use this module
    from .plan import InstallPlan

HASH = re.compile(r"--hash[= ]sha256:([0-9a-fA-F]{64})")
# Every algorithm pip 26.3 accepts (`utils/hashes.py`, STRONG_HASHES).
ANY_HASH = re.compile(r"--hash[= ](sha256|sha384|sha512):[0-9a-fA-F]+")


def hashed_lines(plan: InstallPlan) -> list[str]:
    """The plan's requirement lines and the lines of every constraints file it ships
    (`-c`, `...constraints.txt`; backslash continuations joined), as pip reads both for
    hashes."""
    lines = [line for s in plan.requirement_sets for line in s.lines]
    return lines + [line for _, found in plan.constraints for line in found]


def pinned_hashes(plan: InstallPlan) -> dict[str, set[str]]:
    """{canonical name: {sha256 hex, lower case}} of every requirement or constraint line with
    `--hash` options (`hashed_lines`); a name hashed only with sha384/sha512 maps to an empty
    set, which `check_pins` refuses (the lock and the layer identities name sha256)."""
    pinned: dict[str, set[str]] = {}
    for line in hashed_lines(plan):
        if line.startswith("-") or not ANY_HASH.search(line):
            continue
        try:
            name = Requirement(line.split(" --hash")[0].strip()).name
        except InvalidRequirement:
            continue
        found = pinned.setdefault(canonicalize_name(name), set())
        found.update(h.lower() for h in HASH.findall(line))
    return pinned


def check_resolution(plan: InstallPlan, distributions: Iterable) -> None:
    """For a plan in pip's hash-checking mode resolved by the builder (`resolve`, `platforms`):
    StepError unless every resolved distribution is pinned (pip's rule covers what a file
    pulls in) and every file the resolution offers for it is one of the user's hashes, so the
    lock the build installs from holds only files the user accepted. Distributions: `.name`
    canonical, `.version`, `.files` with `.sha256` and `.name`."""
    lines = [line for s in plan.requirement_sets for line in s.lines]
    constraints = [line for line in hashed_lines(plan) if line not in lines]
    if not in_hash_mode(lines, constraints):
        return
    pinned = pinned_hashes(plan)
    missing = unhashed(distributions, pinned)
    problems = [f"{MISSING_HEAD} {', '.join(missing)} (what the file pulls in)"] if missing else []
    for dist in distributions:
        allowed = pinned.get(dist.name)
        if not allowed:
            if allowed is not None:
                problems.append(sha256_less(dist.name))
            continue
        foreign = sorted(f.name for f in dist.files if f.sha256.lower() not in allowed)
        if foreign:
            problems.append(
                f"{dist.name} {dist.version}: the index offers {', '.join(foreign)}, whose "
                "sha256 is not among the hashes the requirements pin; pin every file of that "
                "version (uv pip compile --generate-hashes) or remove it from the index"
            )
    if problems:
        raise StepError([*problems, "nothing was built or pushed"])


def sha256_less(name: str) -> str:
    return (
        f"{name}: pinned with sha384/sha512 hashes only; the builder checks each wheel by "
        "its sha256 (the lock's and the layer cache's hash): add its --hash=sha256:..."
    )


def check_pins(pins: Iterable, pinned: Mapping[str, set[str]]) -> None:
    """Raise StepError when a pin's wheel (`pin.name`, `pin.version`, `pin.wheel_sha256`) is
    not one of the hashes `pinned` holds for its name; names without pins are not checked."""
    problems = []
    for pin in pins:
        allowed = pinned.get(pin.name)
        if allowed is None or not pin.wheel_sha256:
            continue
        if not allowed:
            problems.append(f"{sha256_less(pin.name)}. Nothing was pushed.")
        elif pin.wheel_sha256.lower() not in allowed:
            problems.append(
                f"{pin.name} {pin.version}: the wheel a layer is made from has sha256 "
                f"{pin.wheel_sha256}, which is not a hash the requirements pin for it "
                f"({', '.join(sorted(allowed))}); fix the pin or the index. Nothing was pushed."
            )
    if problems:
        raise StepError(problems)


# pip 26.3 exceptions/hashes.py: the headings of its hash errors, in its order.
VCS_HEAD = (
    "Can't verify hashes for these requirements because we don't have a way to hash version "
    "control repositories:"
)
DIRECTORY_HEAD = (
    "Can't verify hashes for these file:// requirements because they point to directories:"
)
MISSING_HEAD = (
    "Hashes are required in --require-hashes mode, but they are missing from some requirements."
)
UNPINNED_HEAD = (
    "In --require-hashes mode, all requirements must have their versions pinned with ==. These "
    "do not:"
)
VCS_PREFIXES = ("git+", "hg+", "svn+", "bzr+")


def has_hash(line: str) -> bool:
    return not line.startswith("-") and " --hash=" in f" {line}"


def in_hash_mode(lines: Iterable[str], constraints: Iterable[str] = ()) -> bool:
    """pip's rule: `--require-hashes`, or any requirement or constraint with `--hash`, and no
    `--no-require-hashes` (normalised lines, `requirements.py` form)."""
    lines, constraints = list(lines), list(constraints)
    if "--no-require-hashes" in lines:
        return False
    return "--require-hashes" in lines or any(has_hash(line) for line in [*lines, *constraints])


def hash_mode_problems(
    lines: Iterable[str], constraints: Iterable[str], shipped: Iterable[str], where: str
) -> list[str]:
    """[] unless the normalised requirement `lines` (with `constraints`, and `shipped`: the
    shipped file names, `codeset/...`) are in pip's hash-checking mode; then one problem per
    kind of requirement pip would refuse, naming each one (pip 26.3's headings)."""
    lines, constraints = list(lines), list(constraints)
    if not in_hash_mode(lines, constraints):
        return []
    files = set(shipped)
    hashed_by_constraint = {name_of(c) for c in constraints if has_hash(c)} - {None}
    vcs, directories, missing, unpinned = [], [], [], []
    for line in lines:
        if line.startswith("-"):
            continue
        head = line.split(" --")[0].strip()
        url = head.partition(" @ ")[2].strip() if " @ " in head else head
        if url.startswith(VCS_PREFIXES):
            vcs.append(head)
            continue
        if head.startswith("./") and head[2:].split("[")[0].split(";")[0].strip() not in files:
            directories.append(shown(head))
            continue
        name = name_of(line)
        direct = " @ " in head or head.startswith("./") or "://" in head
        if not direct and not pinned_exactly(head):
            unpinned.append(head)
        if not has_hash(line) and name not in hashed_by_constraint:
            missing.append(shown(head))
    problems = []
    trigger = (
        "(pip 26.3 turns hash-checking on for the whole file when any requirement has a "
        "--hash, or the file says --require-hashes)"
    )
    for head, found, fix in (
        (VCS_HEAD, vcs, "install it from a wheel or an archive URL with its --hash"),
        (DIRECTORY_HEAD, directories, "build a wheel, ship it and give its --hash"),
        (MISSING_HEAD, missing, "add `--hash=sha256:...` to each (uv pip compile "
         "--generate-hashes writes them all)"),
        (UNPINNED_HEAD, unpinned, "pin each with NAME==VERSION"),
    ):  # fmt: skip
        if found:
            problems.append(f"{where}: {head} {', '.join(found)}; {fix} {trigger}")
    return problems


def shown(head: str) -> str:
    """A requirement as the user knows it: a shipped path (`./codeset/vendor/pkg`, see
    `requirements.SHIPPED_DIR`) by its path in the codeset (`vendor/pkg`)."""
    return head[len("./codeset/") :] if head.startswith("./codeset/") else head


def name_of(line: str) -> str | None:
    try:
        return canonicalize_name(Requirement(line.split(" --")[0].strip()).name)
    except InvalidRequirement:
        return None


def pinned_exactly(head: str) -> bool:
    """pip's `InstallRequirement.is_pinned`: one specifier, `==` or `===`."""
    try:
        specifiers = list(Requirement(head).specifier)
    except InvalidRequirement:
        return False
    return len(specifiers) == 1 and specifiers[0].operator in ("==", "===")


def hash_mode_sets(plan: InstallPlan) -> list:
    """The plan's requirement sets in pip's hash-checking mode (`in_hash_mode`)."""
    return [s for s in plan.requirement_sets if in_hash_mode(s.lines)]


def unhashed(distributions: Iterable, pinned: Mapping[str, set[str]]) -> list[str]:
    """`name version` of each distribution (`.name` canonical, `.version`) without a pin."""
    return sorted(f"{d.name} {d.version}" for d in distributions if d.name not in pinned)

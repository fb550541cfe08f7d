"""The codeset's source, for provenance: the git checkout it sits in, read from its files.

Tekton Chains names a build's inputs from `*ARTIFACT_INPUTS` results, objects
`{"uri": "git+<URL>", "digest": "sha1:<commit>"}` (tektoncd/chains, docs/slsa-provenance.md,
pkg/artifacts/signable.go): the uri is the remote's URL with `git+` in front, as SPDX and SLSA
write VCS locations, and the digest the exact commit, never a branch. The builder image has no
git, so `.git` is read directly: HEAD (a ref, followed through `refs/` and `packed-refs`, or a
detached commit) and the `url` of the remote `origin` (else the first remote) in `.git/config`.
A `.git` file (`gitdir: PATH`, worktrees and submodules) is followed. Credentials in the URL
(`https://USER:TOKEN@host/...`) are removed: they never reach an output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_HEX = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_REMOTE = re.compile(r'^\[remote\s+"([^"]+)"\]$')
_USERINFO = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@]+@", re.IGNORECASE)
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")


@dataclass(frozen=True)
class Source:
    """`uri` (`git+https://host/repo.git`) and `digest` (`sha1:<40 hex>`, or `sha256:<64 hex>`
    for a SHA-256 repository); both empty when the codeset is not in a git checkout."""

    uri: str = ""
    digest: str = ""

    def as_object(self) -> dict[str, str]:
        return {"uri": self.uri, "digest": self.digest}


def git_dir(start: Path) -> Path | None:
    """The `.git` folder of the checkout holding `start` (walking up), or None."""
    for folder in [start, *start.parents]:
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():
            text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
            if text.startswith("gitdir:"):
                target = Path(text.removeprefix("gitdir:").strip())
                return target if target.is_absolute() else (folder / target).resolve()
    return None


def common_dir(gitdir: Path) -> Path:
    """A linked worktree keeps refs and config in the main `.git` (its `commondir` file)."""
    common = gitdir / "commondir"
    if common.is_file():
        return (gitdir / common.read_text().strip()).resolve()
    return gitdir


def resolve_ref(gitdir: Path, ref: str) -> str:
    for where in (gitdir, common_dir(gitdir)):
        loose = where / ref
        if loose.is_file():
            return loose.read_text().strip()
        packed = where / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                commit, _, name = line.partition(" ")
                if name.strip() == ref and _HEX.match(commit):
                    return commit
    return ""


def head_commit(gitdir: Path) -> str:
    head = (gitdir / "HEAD").read_text().strip() if (gitdir / "HEAD").is_file() else ""
    if head.startswith("ref:"):
        head = resolve_ref(gitdir, head.removeprefix("ref:").strip())
    return head if _HEX.match(head) else ""


def remote_urls(config_text: str) -> dict[str, str]:
    """{remote name: url} from git-config text (the subset git writes for remotes)."""
    urls: dict[str, str] = {}
    remote = None
    for raw in config_text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            found = _REMOTE.match(line)
            remote = found.group(1) if found else None
        elif remote is not None and "=" in line:
            key, _, value = line.partition("=")
            if key.strip().lower() == "url":
                urls.setdefault(remote, value.strip().strip('"'))
    return urls


def public_url(url: str) -> str:
    """The URL without credentials; `git@host:org/repo.git` as `ssh://host/org/repo.git`."""
    if "://" not in url:
        scp = _SCP_LIKE.match(url)
        if scp and not url.startswith("/"):
            return f"ssh://{scp.group('host')}/{scp.group('path')}"
        return ""  # a local path says nothing to a reader of the provenance
    return _USERINFO.sub(r"\g<scheme>", url)


def codeset_source(codeset: Path) -> Source:
    """The git source of the folder `codeset`, or `Source()` when it is not in a checkout (or
    the checkout has no commit or no remote)."""
    gitdir = git_dir(codeset.resolve())
    if gitdir is None:
        return Source()
    commit = head_commit(gitdir)
    config = common_dir(gitdir) / "config"
    urls = remote_urls(config.read_text(errors="replace")) if config.is_file() else {}
    url = public_url(urls.get("origin") or next(iter(urls.values()), ""))
    if not commit or not url:
        return Source()
    algorithm = "sha1" if len(commit) == 40 else "sha256"
    return Source(
        uri=url if url.startswith("git+") else f"git+{url}", digest=f"{algorithm}:{commit}"
    )

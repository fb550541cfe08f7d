"""The environment every tool the builder starts gets: only what that tool needs.

The builder's own environment may hold the registry's and the index's credentials
(`DOCKER_CONFIG`, `REGISTRY_AUTH_FILE`, `MLFLOW_STEPS_INDEX_NETRC`, `NETRC`, a `HOME` with
`.netrc`, `.docker/config.json` or `pip.conf`). None of it reaches a subprocess unless the
caller adds it: `minimal_env()` keeps the search path, locale, temporary folder, TLS trust
settings and proxies, and points `HOME` at an empty folder unless `home` is given.

A child's own environment is not all it can reach: on Linux, a process may read
`/proc/PID/environ` of every process of its user, its parent included, where the credentials
this process was started with (`FUSEML_PIP_INDEX_URL`, `MLFLOW_STEPS_INDEX_NETRC`, ...) stay
for its whole life. `keep_environ_private()` makes this process non-dumpable
(`prctl(PR_SET_DUMPABLE, 0)`, prctl(2)): its `/proc/PID/environ`, `mem` and `maps` then belong
to root, and reading them or attaching to it needs CAP_SYS_PTRACE (proc(5), ptrace(2) "Ptrace
access mode checking"). Children get their dumpable flag back at `execve` (their environment is
the minimal one above). Root holds CAP_SYS_PTRACE: a codeset's code that runs as root reads
everything anyway.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping

KEPT = (
    "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "SOURCE_DATE_EPOCH",
)  # fmt: skip
EMPTY_HOME = "/nonexistent"


def minimal_env(
    extra: Mapping[str, str] | None = None,
    home: str = EMPTY_HOME,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """{name: value} of `KEPT` from `environ`, `HOME=home` (default: a folder that does not
    exist, so no tool reads a netrc, config or credential file from it), then `extra`."""
    env = {name: environ[name] for name in KEPT if name in environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["HOME"] = home
    env.update(extra or {})
    return env


PR_SET_DUMPABLE, PR_GET_DUMPABLE = 4, 3  # <linux/prctl.h>


def keep_environ_private() -> bool:
    """Make this process non-dumpable (see the module doc), before it starts anything a
    codeset brings; True when the flag is now off, False where there is no prctl (not Linux)
    or it failed. Idempotent; there is no way back for the process, which is what is wanted."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            return False
        return libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False

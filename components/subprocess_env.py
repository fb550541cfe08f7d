"""The environment every tool the builder starts gets: only what that tool needs.

The builder's own environment may hold the registry's and the index's credentials
(`DOCKER_CONFIG`, `REGISTRY_AUTH_FILE`, `MLFLOW_STEPS_INDEX_NETRC`, `NETRC`, a `HOME` with
`.netrc`, `.docker/config.json` or `pip.conf`). None of it reaches a subprocess unless the
caller adds it: `minimal_env()` keeps the search path, locale, temporary folder, TLS trust
settings and proxies, and points `HOME` at an empty folder unless `home` is given.
"""

from __future__ import annotations

import os
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

"""Package index settings, split in two: what may be seen and what may not.

`public()` holds the index URLs without user information and the trusted hosts: it goes into
the tag, `inspect`'s output and logs. `install_env()` holds the same settings with their
credentials, as pip and uv read them (`PIP_INDEX_URL=https://USER:TOKEN@HOST/simple/`): it
reaches the install step only, as a build secret (`secret_text()`, mounted for that one `RUN`)
or, on the local engine, as the install process's environment.

Credentials for an index URL come, first match wins, from:
1. the URL's own user information (`https://USER:TOKEN@HOST/simple/`, the form pip documents);
2. the netrc text in `$MLFLOW_STEPS_INDEX_NETRC` (what a Kubernetes Secret or a FuseML
   extension hands the builder as an environment variable);
3. the netrc file named by `$NETRC`, else `~/.netrc` (pip's and uv's own rule).
A netrc entry matches the URL's host name without its port, as in requests (which pip uses);
`default` matches any of the URLs given here (the user's own index inputs) and nothing else:
pip and uv would send it to every host (requests' `get_netrc_auth`, Python's
`netrc.authenticators`), so they are never handed a netrc themselves (`subprocess_env`).
Credentials are kept per origin (scheme, host, port): a URL's own user information goes to
that origin alone, never to another port or scheme of its host.
"""

from __future__ import annotations

import os
import re
import shlex
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ...problems import StepError

NETRC_ENV = "MLFLOW_STEPS_INDEX_NETRC"
# The build secret's id: `RUN --mount=type=secret,id=...` mounts it at /run/secrets/<id>.
SECRET_ID = "mlflow-steps-index"
NAMES = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST")

Credentials = tuple[str, str]


@dataclass(frozen=True)
class IndexSettings:
    """`index_url` and `extra_index_urls` carry no user information; `credentials` maps an
    origin (`origin_of`) to (login, password) and is never printed (`repr=False`)."""

    index_url: str = ""
    extra_index_urls: tuple[str, ...] = ()
    trusted_hosts: str = ""
    credentials: dict[str, Credentials] = field(default_factory=dict, repr=False, compare=False)

    def public(self) -> dict[str, str]:
        """PIP_* without credentials, the empty ones left out: what the tag hashes."""
        return settings(self.index_url, self.extra_index_urls, self.trusted_hosts)

    def install_env(self) -> dict[str, str]:
        """PIP_* with credentials, the empty ones left out: for the install step only."""
        return settings(
            with_userinfo(self.index_url, self.credentials),
            tuple(with_userinfo(url, self.credentials) for url in self.extra_index_urls),
            self.trusted_hosts,
        )

    def secret_text(self) -> str:
        """The build secret: one `NAME=value` line per setting, read by the install scripts."""
        return "".join(f"{name}={value}\n" for name, value in self.install_env().items())

    def secret_values(self) -> list[str]:
        """What a log must never show: each password, raw and as it appears in a URL."""
        # A token given as the user name alone (`https://TOKEN@HOST/`) is the secret too.
        values = {password or login for login, password in self.credentials.values()}
        values.discard("")
        return sorted(values | {quote(v, safe="") for v in values}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for value in self.secret_values():
            text = text.replace(value, "***")
        return text


def settings(index_url: str, extra: tuple[str, ...], trusted_hosts: str) -> dict[str, str]:
    values = dict(zip(NAMES, (index_url, " ".join(extra), trusted_hosts)))
    return {name: value for name, value in values.items() if value}


def index_settings(
    index_url: str,
    extra_index_url: str,
    trusted_host: str,
    environ: Mapping[str, str] = os.environ,
) -> IndexSettings:
    """The builder's pip_* inputs, split into URLs and credentials (see the module doc)."""
    given: dict[str, Credentials] = {}
    urls = [strip_userinfo(url, given) for url in [index_url.strip(), *extra_index_url.split()]]
    netrc = netrc_entries(environ)
    found = dict(given)
    for url in urls:
        if url and origin_of(url) not in found:
            entry = netrc.get(host_of(url)) or netrc.get("")
            if entry:
                found[origin_of(url)] = entry
    return IndexSettings(urls[0], tuple(u for u in urls[1:] if u), trusted_host.strip(), found)


# A plain-http URL in a normalised requirement line: a direct reference, or an option's value
# (`--index-url`, `--extra-index-url`, `--find-links`); `git+http://` is git's, not pip's. The
# scheme in any case: pip and requests lower it (`HTTP://h/x` is `http://h/x`).
_PLAIN_HTTP = re.compile(r"(?<![\w+.-])http://[^\s;]+", re.IGNORECASE)


def plain_http_problems(
    lines: Iterable[str], index_url: str, extra_index_url: str, trusted_host: str, where: str
) -> list[str]:
    """pip 26.3 keeps an index's credentials per `host[:port]` as written, without the scheme
    (`network/auth.py`, `MultiDomainBasicAuth.passwords[netloc]`), and fetches a direct
    reference from any origin: a codeset's `http://HOST/...` on the host of an https index you
    configured would get that index's credentials unencrypted. One problem per such URL, unless
    `trusted_host` (your `pip_trusted_host`) names the host. `lines`: normalised requirement
    lines of the codeset; the URLs: the builder's own index inputs."""
    secure = set()
    for url in [index_url.strip(), *extra_index_url.split()]:
        parts = urlsplit(url)
        if parts.scheme.lower() == "https" and parts.hostname:
            secure.add(parts.netloc.rpartition("@")[2].lower())
    trusted = {t.lower() for t in trusted_host.split()}
    problems = []
    for line in lines:
        for url in _PLAIN_HTTP.findall(line):
            parts = urlsplit(url)
            netloc = parts.netloc.rpartition("@")[2].lower()
            if netloc in secure and not {netloc, (parts.hostname or "").lower()} & trusted:
                problems.append(
                    f"{where}: names {url.split('?')[0]}, plain HTTP on the host of your https "
                    f"index {netloc}: pip would send that index's credentials there "
                    "unencrypted; write https, or name the host in --pip-trusted-host if you "
                    "mean it"
                )
    return problems


def strip_userinfo(url: str, credentials: dict[str, Credentials]) -> str:
    """`https://u:p@h/simple/` -> `https://h/simple/`, with (u, p) recorded for h."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    credentials[origin_of(url)] = (unquote(parts.username or ""), unquote(parts.password or ""))
    return urlunsplit(parts._replace(netloc=netloc))


def with_userinfo(url: str, credentials: Mapping[str, Credentials]) -> str:
    if not url or origin_of(url) not in credentials:
        return url
    login, password = credentials[origin_of(url)]
    parts = urlsplit(url)
    userinfo = quote(login, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


def ambiguous_url(url: str) -> str:
    """Why `url` could reach another host than the one it seems to name, or "": a backslash,
    white space or a control character, or a host, port or scheme that `urllib.parse` (which
    keys credentials here, and in pip) and urllib3 (which `requests` connects with) read
    differently (`http://evil\\@index/x.whl`: urlsplit says `index`, urllib3 connects to
    `evil`)."""
    if any(c == "\\" or c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "it holds a backslash, white space or a control character"
    from urllib3.util import parse_url  # here: `requests` brings it; a cache hit never needs it

    try:
        parsed = parse_url(url)
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "it is not a valid URL"
    if ((parsed.scheme or "").lower(), (parsed.host or "").lower().strip("[]"), parsed.port) != (
        parts.scheme.lower(),
        (parts.hostname or "").lower(),
        port,
    ):
        return "its host is read differently by urllib.parse and urllib3"
    return ""


def origin_of(url: str) -> str:
    """`scheme://host:port` of `url` (the default port written out), user information left
    out: the origin a credential belongs to."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or {"http": 80, "https": 443}.get(scheme, 0)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def netrc_entries(environ: Mapping[str, str]) -> dict[str, Credentials]:
    """Host name ("" for `default`) -> (login, password), from the sources in the module doc;
    the environment variable's entries win over the file's."""
    entries: dict[str, Credentials] = {}
    path = Path(environ["NETRC"]) if environ.get("NETRC") else Path.home() / ".netrc"
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise StepError(
                f"netrc {path}: cannot be read ({exc.strerror}); fix its permissions or unset NETRC"
            ) from None
        entries.update(parse_netrc(text, str(path)))
    entries.update(parse_netrc(environ.get(NETRC_ENV, ""), NETRC_ENV))
    return entries


def parse_netrc(text: str, where: str) -> dict[str, Credentials]:
    """`machine HOST login USER password TOKEN` entries (and `default`), as in netrc(5); quoted
    tokens and `#` comments as Python's netrc reads them. Errors name the token, never a
    password."""
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError:
        raise StepError(f"{where}: unbalanced quotes; it must be netrc text") from None
    entries: dict[str, Credentials] = {}
    host: str | None = None
    values: dict[str, str] = {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token in ("machine", "default"):
            if host is not None:
                entries[host] = (values.get("login", ""), values.get("password", ""))
            if token == "default":
                host, index = "", index + 1
            else:
                if index + 1 >= len(tokens):
                    raise StepError(f"{where}: `machine` needs a host name")
                host, index = tokens[index + 1], index + 2
            values = {}
        elif token in ("login", "password", "account"):
            if host is None or index + 1 >= len(tokens):
                raise StepError(
                    f"{where}: `{token}` must follow `machine HOST` and have a value; it must be "
                    "netrc text: machine HOST login USER password TOKEN"
                )
            values[token] = tokens[index + 1]
            index += 2
        elif token == "macdef":
            break  # macros end the entries that matter here
        else:
            raise StepError(
                f"{where}: unexpected token at position {index + 1}; it must be netrc text: "
                "machine HOST login USER password TOKEN"
            )
    if host is not None:
        entries[host] = (values.get("login", ""), values.get("password", ""))
    return entries


@contextmanager
def secret_files(index: IndexSettings, folder: str | None = None) -> Iterator[dict[str, Path]]:
    """{SECRET_ID: file} holding `index.secret_text()` (mode 0600, in a private folder under
    `folder`, removed afterwards); {} when there are no index settings at all."""
    text = index.secret_text()
    if not text:
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="mlflow-steps-secret-", dir=folder) as tmp:
        path = Path(tmp) / SECRET_ID
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        yield {SECRET_ID: path}

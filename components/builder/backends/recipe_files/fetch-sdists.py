"""mlflow-steps: fetch the sdists of exact pins that have no wheel, without building them.

Usage: python -I -S fetch-sdists.py DEST REQUIREMENTS_FILE OUT_FILE

Part of the download phase (download-python-env.sh), which alone has the index settings
(PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST, credentials in the URLs). pip cannot
download an sdist without building its metadata (running its setup.py), so for each line
`name==version [--hash=sha256:H ...]` whose version has no wheel on the index, this reads the
index's simple page (PEP 503 HTML), downloads `name-version.tar.gz` (or .zip) into DEST, checks
its sha256 against the page's `#sha256=` fragment and the line's own `--hash` pins, and never
runs it. Credentials go only to the origin of the index URL that holds them. Every other line
is written to OUT_FILE, for pip to download as wheels. Exits 1, saying why, when a pinned
sdist cannot be fetched. Standard library only, Python 3.6 syntax: it runs in the base image.
"""

import base64
import hashlib
import os
import re
import sys
import urllib.request
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

PIN = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)"
    r"((?:\s+--hash=sha256:[0-9a-fA-F]{64})*)"
    r"(?:\s+--config-settings[= ]\S+)*\s*$"  # a build's settings: for the install phase
)


def normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


class Links(HTMLParser):
    def __init__(self):
        HTMLParser.__init__(self)
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs.extend(value for key, value in attrs if key == "href" and value)


def split_userinfo(url):
    """(url without user information, Authorization header value or None)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    token = "{}:{}".format(unquote(parts.username), unquote(parts.password or ""))
    netloc = parts.netloc.rpartition("@")[2]
    header = "Basic " + base64.b64encode(token.encode()).decode()
    return urlunsplit(parts._replace(netloc=netloc)), header


def origin(url):
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None  # a redirect never carries the credentials elsewhere: it fails instead


OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())


def get(url, index, auth):
    """The bytes at `url`; `auth` only when `url` is on the index's origin."""
    request = urllib.request.Request(url)
    if auth and origin(url) == origin(index):
        request.add_header("Authorization", auth)
    with OPENER.open(request, timeout=60) as reply:
        return reply.read()


def fetch(name, version, pins, indexes, dest):
    """The sdist's path in `dest`, or None when the index has a wheel of that version (pip
    downloads it) or nothing at all."""
    stem = normalise("{}-{}".format(name, version))
    for index, auth in indexes:
        try:
            page = get(urljoin(index.rstrip("/") + "/", normalise(name) + "/"), index, auth)
        except OSError:
            continue
        links = Links()
        links.feed(page.decode("utf-8", "replace"))
        files = {}
        for href in links.hrefs:
            url = urljoin(index.rstrip("/") + "/" + normalise(name) + "/", href)
            filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
            files[filename] = url
        for filename in files:
            parts = filename.split("-")
            wheel = filename.endswith(".whl") and len(parts) > 2
            if wheel and normalise(parts[0]) == normalise(name) and parts[1] == version:
                return None  # pip downloads the wheel
        for filename in files:
            if not filename.endswith((".tar.gz", ".zip")):
                continue
            base = filename[: -len(".tar.gz")] if filename.endswith(".tar.gz") else filename[:-4]
            if normalise(base) != stem:
                continue
            url = files[filename]
            expected = urlsplit(url).fragment.partition("sha256=")[2][:64].lower()
            data = get(url.split("#")[0], index, auth)
            digest = hashlib.sha256(data).hexdigest()
            if expected and digest != expected:
                raise SystemExit(
                    "mlflow-steps: {} does not match the index's sha256".format(filename)
                )
            if pins and digest not in pins:
                raise SystemExit(
                    "mlflow-steps: {} {}: {} has sha256 {}, which is not a hash the "
                    "requirements pin for it".format(name, version, filename, digest)
                )
            path = os.path.join(dest, filename)
            with open(path, "wb") as out:
                out.write(data)
            return path
    return None


def main(argv):
    dest, source, out = argv[1:4]
    configured = os.environ.get("PIP_EXTRA_INDEX_URL", "").split()
    configured.insert(0, os.environ.get("PIP_INDEX_URL", ""))
    indexes = [split_userinfo(url) for url in configured if url]
    kept = []
    with open(source) as handle:
        lines = handle.read().splitlines()
    for line in lines:
        match = PIN.match(line.strip())
        if not match:
            kept.append(line)
            continue
        pins = {h.lower() for h in re.findall(r"sha256:([0-9a-fA-F]{64})", match.group(3))}
        path = fetch(match.group(1), match.group(2), pins, indexes, dest)
        if path is None:
            kept.append(line)
        else:
            print(
                "mlflow-steps: {} fetched, to be built in the install phase".format(
                    os.path.basename(path)
                ),
                file=sys.stderr,  # a log line: the caller's stdout carries outputs only
            )
    with open(out, "w") as handle:
        handle.write("".join(line + "\n" for line in kept))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

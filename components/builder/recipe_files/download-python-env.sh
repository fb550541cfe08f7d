#!/bin/sh
# mlflow-steps: the download phase of a pip / python_env install (POSIX sh).
# Usage: download-python-env.sh REQUIREMENTS_FILE...
# The only step that sees the index settings, credentials included (index-settings.sh: the
# build secret in an image build, a private file on the local engine). It fetches wheels only
# (`pip download --only-binary :all:`, hash-checked when a file pins hashes) into wheels/ beside
# this script. Nothing it downloads runs: no sdist, path or VCS requirement is built, and no
# interpreter starts in the environment being built (pip runs in a throwaway venv made by the
# base's own ensurepip). The sdist of an exact pin without a wheel is fetched as a file
# (fetch-sdists.py). Requirements built from source (those sdists; path, VCS and archive URL
# lines) are built by the install phase (install-python-env.sh), which runs without credentials
# and without the index; for them the build backend (setuptools, wheel) is downloaded here.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
python="${MLFLOW_STEPS_PYTHON:-$(command -v python3 || command -v python || true)}"
if [ -z "$python" ]; then
  echo "mlflow-steps: the base image has neither python3 nor python; choose another base_image" >&2
  exit 1
fi
. "$here/index-settings.sh"
# pip reads no configuration file, keeps no cache and asks nothing.
export PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# Lines whose package is built from source: a path in the codeset, a VCS checkout, an archive.
from_source='^(\./|(git|hg|svn|bzr)\+)|@ *(git|hg|svn|bzr)\+|@ *[^ ]*\.(tar\.gz|tgz|tar\.bz2|tar\.xz|tar|zip)([#? ;]|$)'
wheels="$here/wheels"
downloader="$here/download-venv"
mkdir -p "$wheels"
"$python" -I -m venv "$downloader"
build_backend=
for requirements in "$@"; do
  grep -v -E "$from_source" "$requirements" > "$requirements.wheels" || true
  if grep -q -E "$from_source" "$requirements"; then build_backend=1; fi
  if ! "$downloader/bin/python" -I -m pip download --quiet --only-binary :all: \
    --dest "$wheels" -r "$requirements.wheels" 2> "$here/pip-download.err"; then
    # Exact pins with no wheel on the configured index: their sdist is fetched, never built
    # here, and the rest downloaded again.
    "$python" -I -S "$here/fetch-sdists.py" "$wheels" "$requirements.wheels" "$requirements.rest"
    if cmp -s "$requirements.wheels" "$requirements.rest" \
      || ! "$downloader/bin/python" -I -m pip download --quiet --only-binary :all: \
        --dest "$wheels" -r "$requirements.rest"; then
      cat "$here/pip-download.err" >&2
      echo "mlflow-steps: downloading the wheels of $requirements failed (the output above says" \
        "why). The download phase fetches wheels, and the sdists of exact pins (name==version)" \
        "on the configured index, and never builds a package, so its code never runs beside" \
        "the index credentials: pin the sdist's version, put a wheel on the index, or the" \
        "package's source in the codeset as a path requirement (./vendor/pkg)." >&2
      exit 1
    fi
    build_backend=1
    rm -f "$requirements.rest"
  fi
  rm -f "$here/pip-download.err"
  rm -f "$requirements.wheels"
done
if [ -n "$build_backend" ]; then
  "$downloader/bin/python" -I -m pip download --quiet --only-binary :all: --dest "$wheels" \
    setuptools wheel
fi
rm -rf "$downloader"

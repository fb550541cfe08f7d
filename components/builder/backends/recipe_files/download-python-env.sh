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
exec 1>&2  # a log, all of it: the caller's stdout carries its outputs only
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
python="${MLFLOW_STEPS_PYTHON:-$(command -v python3 || command -v python || true)}"
if [ -z "$python" ]; then
  echo "mlflow-steps: the base image has neither python3 nor python; choose another base_image" >&2
  exit 1
fi
# MLFLOW_STEPS_TARGET_PYTHON (X.Y, conda's environment): wheels for that Python, not this one.
target="${MLFLOW_STEPS_TARGET_PYTHON:-}"
target_args=
case "$target" in
  "") ;;
  *[!0-9.]* | .* | *. | *..*)
    echo "mlflow-steps: MLFLOW_STEPS_TARGET_PYTHON must be X.Y, not $target" >&2
    exit 1
    ;;
  *) target_args="--python-version $target" ;;
esac
. "$here/index-settings.sh"
# pip reads no configuration file, keeps no cache and asks nothing.
export PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# Lines whose package is built from source: every direct reference that is not a wheel (a path
# in the codeset, a VCS checkout, an archive of any name or none, e.g. `pkg @ https://h/x`):
# left out of what is downloaded here (pip would build them even with --only-binary), built in
# the install phase. Written by the base's own Python, isolated; SRC -> OUT, and OUT.source
# when any line was left out.
wheels_only() {
  "$python" -I -S - "$1" "$2" <<'PY'
import re, sys
src, out = sys.argv[1:3]
direct = re.compile(r"^(?:\.{0,2}/|~|[a-z][a-z0-9+.-]*://|(?:git|hg|svn|bzr)\+)", re.I)
named = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*(?:\[[^\]]*\])?\s*@\s*(\S+)")
wheel = re.compile(r"^(?:https?|file)://[^?#;\s]*\.whl(?:[?#;].*)?$", re.I)
kept, source = [], False
with open(src) as handle:
    for line in handle.read().splitlines():
        text = line.strip()
        if not text or text.startswith(("#", "-")):
            kept.append(line)
            continue
        match = named.match(text)
        url = match.group(1) if match else (text.split()[0] if direct.match(text) else "")
        if url and not wheel.match(url):
            source = True
            continue
        kept.append(line)
with open(out, "w") as handle:
    handle.write("".join(line + "\n" for line in kept))
if source:
    open(out + ".source", "w").close()
PY
}
wheels="$here/wheels"
downloader="$here/download-venv"
mkdir -p "$wheels"
if ! "$python" -I -m venv "$downloader" 2>/dev/null; then
  # A base whose Python has no ensurepip (some conda builds): its own pip, which the base
  # brings (trusted as the base is), started the same way (-I).
  if ! "$python" -I -m pip --version >/dev/null 2>&1; then
    echo "mlflow-steps: the base's Python has neither venv with ensurepip nor pip; choose" \
      "another base image" >&2
    exit 1
  fi
  rm -rf "$downloader"
  mkdir -p "$downloader/bin"
  ln -s "$python" "$downloader/bin/python"
fi
build_backend=
# Where the install phase will run uv (install-python-env.sh's rule), uv resolves here too, with
# the meaning pip gives the file's options (REQUIREMENTS.uv and .uv-args, uv_options.py) and
# nothing built; pip then downloads exactly those pins. (The base's own pip may be older than
# the options a file uses, such as --all-releases.) Where uv cannot resolve without building
# (an sdist), pip reads the file itself.
use_uv=
if [ -z "$target" ] && [ -x "$here/uv" ] && "$here/uv" --version >/dev/null 2>&1 \
  && "$python" -I -S -c 'import sys; sys.exit(sys.version_info < (3, 8))'; then
  use_uv=1
fi
pinned_by_uv() {  # REQUIREMENTS -> REQUIREMENTS.wheels (exit status 1: uv could not)
  file="$1"
  [ -n "$use_uv" ] && [ -f "$file.uv" ] || return 1
  wheels_only "$file.uv" "$file.uv.wheels"
  rm -f "$file.uv.wheels.source"
  (
    set --
    while IFS= read -r arg || [ -n "$arg" ]; do set -- "$@" "$arg"; done < "$file.uv-args"
    if [ -n "${PIP_INDEX_URL:-}" ]; then export UV_INDEX_URL="$PIP_INDEX_URL"; fi
    if [ -n "${PIP_EXTRA_INDEX_URL:-}" ]; then export UV_EXTRA_INDEX_URL="$PIP_EXTRA_INDEX_URL"; fi
    if [ -n "${PIP_TRUSTED_HOST:-}" ]; then export UV_INSECURE_HOST="$PIP_TRUSTED_HOST"; fi
    if grep -q -e '^--index-url ' -e '^--no-index$' "$file.uv.wheels"; then
      unset UV_INDEX_URL UV_EXTRA_INDEX_URL
    fi
    UV_NO_CACHE=1 "$here/uv" pip compile --quiet --no-config --no-header --no-build \
      --generate-hashes --python "$python" "$@" "$file.uv.wheels" --output-file "$file.pinned"
  ) || { rm -f "$file.uv.wheels" "$file.pinned"; return 1; }
  # The file's own index options, then the pins (pip reads no other index setting of uv's).
  grep -E '^--(index-url|extra-index-url|find-links|no-index|trusted-host)( |$)' "$file.uv.wheels" \
    > "$file.wheels" || true
  cat "$file.pinned" >> "$file.wheels"
  rm -f "$file.uv.wheels" "$file.pinned"
}
for requirements in "$@"; do
  deps=  # pins from uv are the whole environment: pip resolves nothing again
  if pinned_by_uv "$requirements"; then
    deps=--no-deps
  else
    wheels_only "$requirements" "$requirements.wheels"
  fi
  wheels_only "$requirements" "$requirements.check"
  if [ -e "$requirements.check.source" ]; then build_backend=1; fi
  rm -f "$requirements.check" "$requirements.check.source" "$requirements.wheels.source"
  # shellcheck disable=SC2086
  if ! "$downloader/bin/python" -I -m pip download --quiet --only-binary :all: $deps $target_args \
    --dest "$wheels" -r "$requirements.wheels" 2> "$here/pip-download.err"; then
    # Exact pins with no wheel on the configured index: their sdist is fetched, never built
    # here, and the rest downloaded again.
    "$python" -I -S "$here/fetch-sdists.py" "$wheels" "$requirements.wheels" "$requirements.rest"
    if cmp -s "$requirements.wheels" "$requirements.rest" \
      || ! "$downloader/bin/python" -I -m pip download --quiet --only-binary :all: $target_args \
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
  # The common build backend, for the install phase (which has no index). A package whose
  # backend is its own (backend-path) or another one needs none of it; one that needs it and
  # does not find it fails there, naming it.
  # shellcheck disable=SC2086
  if ! "$downloader/bin/python" -I -m pip download --quiet --only-binary :all: $target_args \
    --dest "$wheels" setuptools wheel; then
    echo "mlflow-steps: setuptools and wheel are not on the index; packages built from source" \
      "in the install phase get no build backend from it" >&2
  fi
fi
rm -rf "$downloader"

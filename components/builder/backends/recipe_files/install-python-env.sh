#!/bin/sh
# mlflow-steps: the install phase of a pip / python_env install, into a virtual environment.
# Usage: install-python-env.sh VENV --compile-bytecode|--no-compile-bytecode REQUIREMENTS_FILE...
# (files are installed in order; the script's own folder is deleted at the end)
# Runs after download-python-env.sh, without any index setting or credential: it installs from
# the wheels that phase fetched (--no-index --find-links wheels/), and builds here, only here,
# what is built from source (path, VCS and archive requirements). uv when it runs here and
# supports the interpreter (3.8+), else pip. No cache is kept. Bytecode and the library check
# run in the new venv isolated (-I -S): no environment variable, no site, no wheel's .pth file.
# The `local` engine runs this same script on the host, with MLFLOW_STEPS_PYTHON (interpreter)
# and MLFLOW_STEPS_RUNTIME_PARENT (where the runtime module lives) set.
set -eu
exec 1>&2  # a log, all of it: the caller's stdout carries its outputs only
venv="$1"
compile="$2"
shift 2
here="$(cd "$(dirname "$0")" && pwd)"
# Path requirements (./codeset/...) and -c files are shipped next to the requirements files:
# pip and uv read a line's path relative to the working directory.
cd "$here"
python="${MLFLOW_STEPS_PYTHON:-$(command -v python3 || command -v python || true)}"
if [ -z "$python" ]; then
  echo "mlflow-steps: the base image has neither python3 nor python; choose another base_image" >&2
  exit 1
fi
# No index setting reaches this phase, whatever the environment holds.
unset PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST UV_INDEX_URL UV_EXTRA_INDEX_URL \
  UV_INSECURE_HOST UV_INDEX UV_DEFAULT_INDEX UV_FIND_LINKS
export PIP_CONFIG_FILE=/dev/null
export UV_NO_CACHE=1  # every uv call, `uv venv` too: nothing of uv stays in the image
# Reproducible images: with SOURCE_DATE_EPOCH set, any .pyc a build backend writes is
# hash-based (py_compile's rule), not stamped with the install time.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-0}"
wheels="$here/wheels"
mkdir -p "$wheels"
if [ -x "$here/uv" ] && "$here/uv" --version >/dev/null 2>&1 \
  && "$python" -I -S -c 'import sys; sys.exit(sys.version_info < (3, 8))'; then
  echo "mlflow-steps: installing with uv into $venv ($("$python" --version 2>&1))"
  "$here/uv" venv --quiet --python "$python" "$venv"
  # uv reads REQUIREMENTS.uv with the arguments in REQUIREMENTS.uv-args (one a line): the
  # meaning pip gives the options uv does not read (uv_options.py), and pip's index strategy.
  # The install phase has no index: the wheels the download phase fetched, and nothing else.
  for requirements in "$@"; do
    file="$here/$requirements"
    set --
    if [ -f "$file.uv" ]; then
      while IFS= read -r arg || [ -n "$arg" ]; do set -- "$@" "$arg"; done < "$file.uv-args"
      file="$file.uv"
    fi
    "$here/uv" pip install --offline --no-index --find-links "$wheels" \
      --python "$venv/bin/python" "$@" -r "$file"
  done
else
  echo "mlflow-steps: installing with pip into $venv ($("$python" --version 2>&1))"
  "$python" -I -m venv "$venv"
  for requirements in "$@"; do
    "$venv/bin/pip" install --no-index --find-links "$wheels" --no-cache-dir \
      --disable-pip-version-check --no-compile -r "$here/$requirements"
  done
fi
# The venv's site-packages, from its layout (asking the venv's Python would read its site).
version="$("$python" -I -S -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
site="$venv/lib/python$version/site-packages"
dirs="$site"
platsite="$venv/lib64/python$version/site-packages"
if [ -d "$platsite" ] && [ "$(cd "$platsite" && pwd -P)" != "$(cd "$site" && pwd -P)" ]; then
  dirs="$site $platsite"
fi
if [ "$compile" = --compile-bytecode ]; then
  # Bytecode on every core, unchecked-hash (reproducible; no source read or stat at import);
  # packages' own test folders kept but not compiled (compile-bytecode.py says how). Each
  # folder once: a venv's platlib is its purelib.
  if "$python" -I -S -c 'import sys; sys.exit(sys.version_info < (3, 7))'; then
    # shellcheck disable=SC2086
    "$venv/bin/python" -I -S "$here/compile-bytecode.py" $dirs
  else  # Python 3.6: no hash-based .pyc; timestamp .pyc, as pip writes them
    # shellcheck disable=SC2086
    "$venv/bin/python" -I -S -m compileall -qq -j 0 -x '/site-packages/.*/tests?/' $dirs || true
  fi
fi
# Every shared library the installed packages need must resolve here, or the build stops.
# shellcheck disable=SC2086
"$venv/bin/python" -I -S "$here/check-libraries.py" $dirs
echo "${MLFLOW_STEPS_RUNTIME_PARENT:-/opt/mlflow-steps}" > "$site/mlflow_steps_runtime.pth"
rm -rf "$here"

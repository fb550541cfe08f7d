#!/bin/sh
# mlflow-steps: install a pip / python_env environment into a virtual environment.
# Usage: install-python-env.sh VENV --compile-bytecode|--no-compile-bytecode REQUIREMENTS_FILE...
# (files are installed in order; the script's own folder is deleted at the end)
# uv when it runs here and supports the interpreter (3.8+), else pip. No cache is kept.
# Index settings (credentials included) come from index-settings.sh: a build secret in an image
# build, the process environment on the local engine. Never written into the image.
# The `local` engine runs this same script on the host, with MLFLOW_STEPS_PYTHON (interpreter)
# and MLFLOW_STEPS_RUNTIME_PARENT (where the runtime module lives) set.
set -eu
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
export UV_NO_CACHE=1  # every uv call, `uv venv` too: nothing of uv stays in the image
# Reproducible images: with SOURCE_DATE_EPOCH set, any .pyc a build backend writes is
# hash-based (py_compile's rule), not stamped with the install time.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-0}"
. "$here/index-settings.sh"
if [ -x "$here/uv" ] && "$here/uv" --version >/dev/null 2>&1 \
  && "$python" -c 'import sys; sys.exit(sys.version_info < (3, 8))'; then
  if [ -n "${PIP_INDEX_URL:-}" ]; then export UV_INDEX_URL="$PIP_INDEX_URL"; fi
  if [ -n "${PIP_EXTRA_INDEX_URL:-}" ]; then export UV_EXTRA_INDEX_URL="$PIP_EXTRA_INDEX_URL"; fi
  if [ -n "${PIP_TRUSTED_HOST:-}" ]; then export UV_INSECURE_HOST="$PIP_TRUSTED_HOST"; fi
  echo "mlflow-steps: installing with uv into $venv ($("$python" --version 2>&1))"
  "$here/uv" venv --quiet --python "$python" "$venv"
  # uv reads REQUIREMENTS.uv with the arguments in REQUIREMENTS.uv-args (one a line): the
  # meaning pip gives the options uv does not read (uv_options.py), and pip's index strategy.
  # A file naming its own index (--index-url, --no-index) replaces the builder's, as in pip.
  sets="$*"
  for requirements in $sets; do
    file="$here/$requirements"
    set --
    if [ -f "$file.uv" ]; then
      while IFS= read -r arg || [ -n "$arg" ]; do set -- "$@" "$arg"; done < "$file.uv-args"
      file="$file.uv"
    else
      set -- --index-strategy=unsafe-best-match
    fi
    (
      if grep -q -e '^--index-url ' -e '^--no-index$' "$file"; then
        unset UV_INDEX_URL UV_EXTRA_INDEX_URL
      fi
      "$here/uv" pip install --python "$venv/bin/python" "$@" -r "$file"
    )
  done
else
  echo "mlflow-steps: installing with pip into $venv ($("$python" --version 2>&1))"
  "$python" -m venv "$venv"
  for requirements in "$@"; do
    "$venv/bin/pip" install --no-cache-dir --disable-pip-version-check --no-compile \
      -r "$here/$requirements"
  done
fi
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
platsite="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')"
if [ "$compile" = --compile-bytecode ]; then
  # Bytecode on every core, unchecked-hash (reproducible; no source read or stat at import);
  # packages' own test folders kept but not compiled (compile-bytecode.py says how). Each
  # folder once: a venv's platlib is its purelib.
  dirs="$site"
  if [ "$platsite" != "$site" ]; then dirs="$site $platsite"; fi
  if "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 7))'; then
    # shellcheck disable=SC2086
    "$venv/bin/python" "$here/compile-bytecode.py" $dirs
  else  # Python 3.6: no hash-based .pyc; timestamp .pyc, as pip writes them
    # shellcheck disable=SC2086
    "$venv/bin/python" -m compileall -qq -j 0 -x '/site-packages/.*/tests?/' $dirs || true
  fi
fi
# Every shared library the installed packages need must resolve here, or the build stops.
"$venv/bin/python" "$here/check-libraries.py" "$site" "$platsite"
echo "${MLFLOW_STEPS_RUNTIME_PARENT:-/opt/mlflow-steps}" > "$site/mlflow_steps_runtime.pth"
rm -rf "$here"

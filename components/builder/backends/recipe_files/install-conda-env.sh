#!/bin/sh
# mlflow-steps: the install phase of a conda environment, into the base environment (POSIX sh).
# Usage: install-conda-env.sh
# Runs after download-conda-env.sh, without any index setting or credential, and offline:
# conda links the packages that phase fetched (pkgs/, `conda install --offline`), the
# conda.yaml's `variables` are set (conda-variables.txt), and pip installs the `pip:` section
# from the downloaded wheels only (--no-index --find-links wheels/), building here, only here,
# its sdists, path and VCS requirements. The script's own folder is deleted at the end.
set -eu
exec 1>&2  # a log, all of it: the caller's stdout carries its outputs only
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
# No index setting reaches this phase, whatever the environment holds.
unset PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST UV_INDEX_URL UV_EXTRA_INDEX_URL \
  UV_INSECURE_HOST UV_INDEX UV_DEFAULT_INDEX UV_FIND_LINKS
export PIP_CONFIG_FILE=/dev/null CONDA_PKGS_DIRS="$here/pkgs" CONDA_OFFLINE=true
set --
while IFS= read -r channel || [ -n "$channel" ]; do
  case "$channel" in
    "") ;;
    nodefaults) set -- "$@" --override-channels ;;
    *) set -- "$@" "--channel=$channel" ;;
  esac
done < conda-channels.txt
conda install --name base --yes --quiet --offline "$@" --file conda-specs.txt
if grep -q '[^[:space:]]' conda-variables.txt; then
  set --
  while IFS= read -r variable || [ -n "$variable" ]; do
    if [ -n "$variable" ]; then set -- "$@" "$variable"; fi
  done < conda-variables.txt
  conda env config vars set --name base "$@"
fi
if grep -q '[^[:space:]]' pip-requirements.txt; then
  # The environment's pip, from the downloaded files only.
  python -m pip install --no-index --find-links "$here/wheels" --no-cache-dir \
    --disable-pip-version-check -r pip-requirements.txt
fi
conda clean --all --force-pkgs-dirs --yes
rm -rf /root/.cache/pip
# The environment's site-packages, from its layout (PREFIX/bin/python ->
# PREFIX/lib/pythonX.Y/site-packages): no interpreter of it starts with its site, no .pth runs.
prefix="$(cd "$(dirname "$(command -v python)")/.." && pwd)"
version="$(python -I -S -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
site="$prefix/lib/python$version/site-packages"
if [ ! -d "$site" ]; then
  echo "mlflow-steps: the conda environment has no $site" >&2
  exit 1
fi
python -I -S "$here/check-libraries.py" "$site"
echo "${MLFLOW_STEPS_RUNTIME_PARENT:-/opt/mlflow-steps}" > "$site/mlflow_steps_runtime.pth"
rm -rf "$here"

#!/bin/sh
# mlflow-steps: apply a conda environment file to the base environment of miniconda.
# Usage: install-conda-env.sh ENVIRONMENT_YAML
set -eu
exec 1>&2  # a log, all of it: the caller's stdout carries its outputs only
here="$(cd "$(dirname "$0")" && pwd)"
# Index settings (credentials included) for conda's pip: a build secret, never in the image.
. "$here/index-settings.sh"
conda env update --quiet --name base --file "$here/$1"
conda clean --all --force-pkgs-dirs --yes
rm -rf /root/.cache/pip
site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
python "$here/check-libraries.py" "$site"
echo /opt/mlflow-steps > "$site/mlflow_steps_runtime.pth"
rm -rf "$here"

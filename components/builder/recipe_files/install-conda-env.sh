#!/bin/sh
# mlflow-steps: apply a conda environment file to the base environment of miniconda.
# Usage: install-conda-env.sh ENVIRONMENT_YAML
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST; do
  eval "value=\${$name:-}"
  if [ -z "$value" ]; then unset "$name"; fi
done
conda env update --quiet --name base --file "$here/$1"
conda clean --all --force-pkgs-dirs --yes
rm -rf /root/.cache/pip
site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
python "$here/check-libraries.py" "$site"
echo /opt/mlflow-steps > "$site/mlflow_steps_runtime.pth"
rm -rf "$here"

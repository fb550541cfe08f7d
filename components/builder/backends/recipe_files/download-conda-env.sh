#!/bin/sh
# mlflow-steps: the download phase of a conda environment (POSIX sh).
# Usage: download-conda-env.sh
# Reads, beside this script: conda-channels.txt (priority order), conda-specs.txt and
# pip-requirements.txt (the conda.yaml's `pip:` section), one item a line. Downloads only;
# nothing it downloads runs:
# - conda solves the environment against the base's own environment and fetches its packages
#   into pkgs/ beside this script (CONDA_PKGS_DIRS, `conda install --download-only`): no
#   package is linked, so no package's link script runs. conda reads no index setting.
# - the pip section: wheels for the Python the environment will have (read from conda's
#   dry run), and the sdists of exact pins as files, into wheels/ (download-python-env.sh,
#   the only process that reads the index settings, credentials included; hash-checked when
#   the section pins hashes; run by the base's own Python, which the codeset does not choose).
# The install phase (install-conda-env.sh) then installs from these folders offline, without
# any index setting; only there does a package's code run (link scripts, sdist builds).
set -eu
exec 1>&2  # a log, all of it: the caller's stdout carries its outputs only
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
python="${MLFLOW_STEPS_PYTHON:-$(command -v python3 || command -v python || true)}"
if [ -z "$python" ]; then
  echo "mlflow-steps: the base image has neither python3 nor python; choose another base image" >&2
  exit 1
fi
# Nothing of the index settings reaches conda.
unset PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST
export CONDA_PKGS_DIRS="$here/pkgs"
mkdir -p "$here/pkgs"
set --
while IFS= read -r channel || [ -n "$channel" ]; do
  case "$channel" in
    "") ;;
    nodefaults) set -- "$@" --override-channels ;;
    *) set -- "$@" "--channel=$channel" ;;
  esac
done < conda-channels.txt
# What conda would link: the Python the environment ends with (the pip section's wheels are
# downloaded for it), JSON read by the base's own Python, isolated.
conda install --name base --yes --dry-run --json "$@" --file conda-specs.txt > conda-plan.json
target="$("$python" -I -S - conda-plan.json <<'PY'
import json, sys
with open(sys.argv[1]) as handle:
    plan = json.load(handle)
actions = plan.get("actions") or {}
groups = actions if isinstance(actions, list) else [actions]
for group in groups:
    for record in group.get("LINK") or []:
        if isinstance(record, dict) and record.get("name") == "python":
            print(".".join(str(record.get("version", "")).split(".")[:2]))
            sys.exit(0)
print("%d.%d" % sys.version_info[:2])
PY
)"
rm -f conda-plan.json
echo "mlflow-steps: downloading the conda packages (Python $target)"
conda install --name base --yes --quiet --download-only "$@" --file conda-specs.txt
if grep -q '[^[:space:]]' pip-requirements.txt; then
  MLFLOW_STEPS_PYTHON="$python" MLFLOW_STEPS_TARGET_PYTHON="$target" \
    sh "$here/download-python-env.sh" pip-requirements.txt
fi

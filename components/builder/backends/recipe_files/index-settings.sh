# mlflow-steps: the package index settings, sourced by the download phase only (POSIX sh):
# download-python-env.sh, and install-conda-env.sh. In an image build they come from the build
# secret mlflow-steps-index, mounted at /run/secrets/mlflow-steps-index for that RUN only (never
# in a layer, the history or a label): one NAME=value line each for PIP_INDEX_URL,
# PIP_EXTRA_INDEX_URL and PIP_TRUSTED_HOST, credentials included. On the local engine
# MLFLOW_STEPS_INDEX_SECRET names a private file with the same lines, deleted before the install
# phase; set empty, nothing is read.
# Each line is exported as it is (no shell expansion of the value); empty settings are unset.
index_secret="${MLFLOW_STEPS_INDEX_SECRET-/run/secrets/mlflow-steps-index}"
if [ -r "$index_secret" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      PIP_INDEX_URL=* | PIP_EXTRA_INDEX_URL=* | PIP_TRUSTED_HOST=*) export "$line" ;;
    esac
  done < "$index_secret"
fi
for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST; do
  eval "value=\${$name:-}"
  if [ -z "$value" ]; then unset "$name"; fi
done
unset index_secret line name value

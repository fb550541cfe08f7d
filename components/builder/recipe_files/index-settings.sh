# mlflow-steps: the package index settings, sourced by the install scripts (POSIX sh).
# In an image build they come from the build secret mlflow-steps-index, mounted at
# /run/secrets/mlflow-steps-index for this RUN only (never in a layer, the history or a label):
# one NAME=value line each for PIP_INDEX_URL, PIP_EXTRA_INDEX_URL and PIP_TRUSTED_HOST,
# credentials included. On the local engine (MLFLOW_STEPS_INDEX_SECRET set empty) they are
# already in this process's environment.
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

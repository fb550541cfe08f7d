#!/bin/sh
# mlflow-steps: install the builder's `system_packages` (Debian package names) with apt-get.
# Usage: install-system-packages.sh PACKAGE...
# Runs in the same RUN as the environment install; the package lists are removed afterwards.
set -eu
exec 1>&2  # a log, all of it: the caller's stdout carries its outputs only
if ! command -v apt-get >/dev/null 2>&1; then
  echo "mlflow-steps: system_packages ($*) are installed with apt-get, which the base image" \
    "does not have; choose a Debian or Ubuntu base_image, or leave system_packages empty" >&2
  exit 1
fi
echo "mlflow-steps: installing system packages: $*"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$@" >/dev/null
apt-get clean
# The package lists, and the logs that would make the layer differ from build to build.
rm -rf /var/lib/apt/lists/* /var/log/apt/*.log /var/log/dpkg.log /var/cache/ldconfig/aux-cache

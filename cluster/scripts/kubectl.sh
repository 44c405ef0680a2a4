#!/usr/bin/env bash
# Run the built kubectl against the local cluster (admin kubeconfig).
#   cluster/scripts/kubectl.sh get pods -A
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
K8S_BIN=$("$SCRIPTS/build.sh" --print-env | sed -n 's/^K8S_BIN=//p')
if [[ ! -x $K8S_BIN/kubectl ]]; then
  echo "kubectl.sh: $K8S_BIN/kubectl is not built; run cluster/scripts/build.sh" >&2
  exit 1
fi
if [[ ! -f $RUN/kubeconfig ]]; then
  echo "kubectl.sh: no cluster in $RUN; start one with cluster/scripts/up.sh" >&2
  exit 1
fi
exec "$K8S_BIN/kubectl" --kubeconfig "$RUN/kubeconfig" "$@"

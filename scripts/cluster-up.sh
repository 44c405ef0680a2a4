#!/usr/bin/env bash
# `npm run cluster:up`: build what is missing, start the local cluster, then a hahaha instance
# with the chart's RBAC. Progress goes to stderr; the last line of stdout is the kubeconfig path.
set -Eeuo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBECONFIG_PATH=$(bash "$ROOT/cluster/scripts/up.sh" | tail -n 1)
bash "$ROOT/scripts/hahaha-up.sh" >&2
echo "$KUBECONFIG_PATH"

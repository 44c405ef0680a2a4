#!/usr/bin/env bash
# Copies the sidecar catalog, config/sidecars.yaml (the one source of truth), into the chart.
# Helm cannot read files outside the chart directory, so the chart carries a copy;
# test/unit/chart-catalog.test.ts fails whenever the two differ.
#   charts/sync-catalog.sh          copy
#   charts/sync-catalog.sh --check  exit 1 if the copy differs, copy nothing
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=$root/config/sidecars.yaml
dst=$root/charts/hahaha/files/sidecars.yaml
case ${1:-} in
  --check)
    if ! cmp -s "$src" "$dst"; then
      echo "charts/hahaha/files/sidecars.yaml differs from config/sidecars.yaml; run charts/sync-catalog.sh" >&2
      exit 1
    fi
    ;;
  '')
    cp "$src" "$dst"
    echo "copied config/sidecars.yaml to charts/hahaha/files/sidecars.yaml" >&2
    ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac

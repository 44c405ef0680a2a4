#!/usr/bin/env bash
# Quality gate for the repository's Go modules (cluster/node, cluster/sidecars):
# gofmt -l (no unformatted file), go vet ./... and go test ./..., with the environment
# cluster/scripts/build-tools.sh builds them with (no cgo, -mod=mod, -trimpath, the local
# toolchain), so that the compiled dependencies in Go's build cache serve both.
# Part of `npm run check`; takes no arguments.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "check-go: no go on PATH nor in /usr/local/go/bin" >&2; exit 1; }
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -mod=mod -buildvcs=false -trimpath"
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

log() { printf '[check-go %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

T0=$SECONDS
failed=()
for m in node sidecars; do
  dir=$ROOT/cluster/$m
  [[ -f $dir/go.mod ]] || { log "cluster/$m has no go.mod"; failed+=("cluster/$m: no go.mod"); continue; }
  (
    cd "$dir"
    t=$SECONDS
    unformatted=$(gofmt -l .)
    if [[ -n $unformatted ]]; then
      log "cluster/$m: not gofmt-formatted (fix: gofmt -w cluster/$m):"
      printf '  %s\n' "${unformatted//$'\n'/$'\n  '}" >&2
      exit 1
    fi
    log "cluster/$m: go vet ./..."
    go vet ./...
    log "cluster/$m: go test ./..."
    go test ./...
    log "cluster/$m: ok in $((SECONDS - t))s"
  ) || failed+=("cluster/$m")
done
if ((${#failed[@]} > 0)); then
  log "FAILED: ${failed[*]} ($((SECONDS - T0))s)"
  exit 1
fi
log "all Go modules pass gofmt, go vet and go test ($((SECONDS - T0))s)"

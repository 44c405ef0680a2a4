#!/usr/bin/env bash
# Build the repository's own Go tools for the local cluster:
#   cluster/node     -> hahaha-node (the kubelet stand-in)
#   cluster/sidecars -> one binary per main package (test sidecars)
# plus links to the real configmap-reload, cloud-sql-proxy v2 and v1 and istio's pilot-agent
# (built by build.sh), and `envoy`, a link to fake-sidecar that runs as the Envoy pilot-agent
# starts, all in
#   ${XDG_CACHE_HOME:-$HOME/.cache}/hahaha/tools-<hash>/bin/
# where <hash> covers the sources of both modules, the Go version and the
# configmap-reload, cloud-sql-proxy and istio versions; a directory with a .stamp is
# reused as is.
#
# Prints the bin directory as the last line of stdout (progress goes to stderr).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$ROOT/cluster/versions.env"
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/hahaha
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -mod=mod -buildvcs=false"
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

log() { printf '[build-tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

MODULES=()
for m in node sidecars; do
  [[ -f $ROOT/cluster/$m/go.mod ]] && MODULES+=("$m")
done
[[ ${#MODULES[@]} -gt 0 ]] || { log "neither cluster/node nor cluster/sidecars has a go.mod"; exit 1; }

# configmap-reload and cloud-sql-proxy are real sidecars the tests run;
# build them first so the tools dir can link them.
"$ROOT/cluster/scripts/build.sh" configmap-reload cloud-sql-proxy cloud-sql-proxy-v1 pilot-agent
BUILD_ENV=$("$ROOT/cluster/scripts/build.sh" --print-env)
CMR_BIN=$(sed -n 's/^CONFIGMAP_RELOAD_BIN=//p' <<<"$BUILD_ENV")/configmap-reload
CSP_BIN=$(sed -n 's/^CLOUD_SQL_PROXY_BIN=//p' <<<"$BUILD_ENV")/cloud-sql-proxy
CSP1_BIN=$(sed -n 's/^CLOUD_SQL_PROXY_V1_BIN=//p' <<<"$BUILD_ENV")/cloud_sql_proxy
PILOT_BIN=$(sed -n 's/^PILOT_AGENT_BIN=//p' <<<"$BUILD_ENV")/pilot-agent

hash=$(
  {
    go version
    echo "configmap-reload $CONFIGMAP_RELOAD_VERSION"
    echo "cloud-sql-proxy $CLOUD_SQL_PROXY_VERSION"
    echo "cloud-sql-proxy v1 $CLOUD_SQL_PROXY_V1_VERSION"
    echo "istio $ISTIO_VERSION"
    cd "$ROOT/cluster"
    find "${MODULES[@]}" -type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name '*.s' -o -name '*.c' \) \
      -not -path '*/testdata/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
)
DIR=$CACHE/tools-$hash
if [[ -f $DIR/.stamp ]]; then
  log "tools up to date ($DIR)"
  echo "$DIR/bin"
  exit 0
fi

mkdir -p "$CACHE"
# one tools build at a time (other shells, CI, the demo may run this too)
exec {LOCK_FD}>"$CACHE/tools.lock"
if ! flock -n "$LOCK_FD"; then
  log "another tools build is running; waiting for it"
  flock "$LOCK_FD"
fi
if [[ -f $DIR/.stamp ]]; then
  log "tools built meanwhile ($DIR)"
  echo "$DIR/bin"
  exit 0
fi
t0=$SECONDS
tmp=$(mktemp -d "$DIR.tmp.XXXXXX")
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"
for m in "${MODULES[@]}"; do
  (
    cd "$ROOT/cluster/$m"
    if [[ $m == node ]]; then
      log "building cluster/node -> hahaha-node"
      go build -trimpath -ldflags "-s -w" -o "$tmp/bin/hahaha-node" .
    else
      mains=$(go list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' ./...)
      if [[ -n $mains ]]; then
        log "building cluster/$m: ${mains//$'\n'/ }"
        # shellcheck disable=SC2086
        go build -trimpath -ldflags "-s -w" -o "$tmp/bin/" $mains
      fi
    fi
  )
done
ln -s "$CMR_BIN" "$tmp/bin/configmap-reload"
ln -s "$CSP_BIN" "$tmp/bin/cloud-sql-proxy"
ln -s "$CSP1_BIN" "$tmp/bin/cloud_sql_proxy"
ln -s "$PILOT_BIN" "$tmp/bin/pilot-agent"
# fake-sidecar run as `envoy` is the Envoy look-alike (pilot-agent starts it by that name)
ln -s fake-sidecar "$tmp/bin/envoy"
echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - t0))s" >"$tmp/.stamp"
trap - EXIT
rm -rf "$DIR"
mv "$tmp" "$DIR"
# keep the cache small: keep the 5 newest tool dirs (a running cluster may
# still use a recent one)
# shellcheck disable=SC2010 # tools-<hex> names only; ls -t gives their age order
ls -1dt "$CACHE"/tools-* 2>/dev/null | grep -v '\.tmp\.' | tail -n +6 | while read -r old; do
  rm -rf "$old"
done
log "tools built in $((SECONDS - t0))s -> $DIR/bin"
echo "$DIR/bin"

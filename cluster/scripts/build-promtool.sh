#!/usr/bin/env bash
# Build Prometheus' promtool from the Go module proxy, for scripts/check-rules.sh:
#
#   $CACHE/promtool-$PROMTOOL_VERSION/bin/promtool
#
# where CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/hahaha and PROMTOOL_VERSION, pinned in
# cluster/versions.env, is a version of the module github.com/prometheus/prometheus
# (v0.3XX.Y is Prometheus v3.XX.Y). Cached the way build.sh caches its binaries: the directory is used
# only once it has a .stamp, written last into a complete temp dir that is then
# renamed into place; a lock serialises concurrent builds. Nothing is written into
# the repository. Built with -tags remove_all_sd: promtool's rule checks and rule
# unit tests need none of the service-discovery plugins (a fifth fewer packages).
#
# Usage: build-promtool.sh            build if needed; prints the bin dir as the last line
#        build-promtool.sh --print-env   PROMTOOL_BIN=... without building
#   PROMTOOL_VERSION=vX  another version (default: the one in cluster/versions.env)
#   BUILD_JOBS=N         go build -p (default 2)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
want=${PROMTOOL_VERSION:-}
# shellcheck source=../versions.env
source "$ROOT/cluster/versions.env"
PROMTOOL_VERSION=${want:-${PROMTOOL_VERSION:?cluster/versions.env sets no PROMTOOL_VERSION}}
MOD=github.com/prometheus/prometheus
PKG=$MOD/cmd/promtool

CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/hahaha
DIR=$CACHE/promtool-$PROMTOOL_VERSION

if [[ ${1:-} == --print-env ]]; then
  echo "PROMTOOL_BIN=$DIR/bin"
  exit 0
fi

log() { printf '[build-promtool %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ -f $DIR/.stamp ]]; then
  log "promtool $PROMTOOL_VERSION: up to date ($DIR)"
  echo "$DIR/bin"
  exit 0
fi

command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -mod=mod -buildvcs=false"
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
JOBS=${BUILD_JOBS:-2}

# One build of this version at a time (several shells, CI, a demo); the lock
# goes when the script exits.
mkdir -p "$CACHE"
exec {LOCK_FD}>"$DIR.lock"
if ! flock -n "$LOCK_FD"; then
  log "another build of promtool-$PROMTOOL_VERSION is running; waiting for it"
  flock "$LOCK_FD"
fi
if [[ -f $DIR/.stamp ]]; then
  log "promtool $PROMTOOL_VERSION: built meanwhile ($DIR)"
  echo "$DIR/bin"
  exit 0
fi

t0=$SECONDS
# we hold the lock: temp dirs of this version are from aborted builds
rm -rf "$DIR".tmp.*
tmp=$(mktemp -d "$DIR.tmp.XXXXXX")
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"

# A work dir with a go.mod of our own that requires the module (the way build.sh
# builds helm); Prometheus' go.mod has no replace directives to carry over.
w=$CACHE/work/promtool-$PROMTOOL_VERSION
mkdir -p "$w"
log "promtool $PROMTOOL_VERSION: resolving $MOD@$PROMTOOL_VERSION"
upstream_mod=$(go mod download -json "$MOD@$PROMTOOL_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
[[ -f $upstream_mod ]] || { log "cannot download $MOD@$PROMTOOL_VERSION"; exit 1; }
if grep -q '^replace' "$upstream_mod"; then
  log "$MOD@$PROMTOOL_VERSION has replace directives, which this script does not carry over"
  exit 1
fi
{
  echo "module hahaha.local/promtool-build"
  echo
  sed -n 's/^go \(.*\)$/go \1/p' "$upstream_mod"
  echo
  echo "require $MOD $PROMTOOL_VERSION"
} >"$w/go.mod"
cd "$w"
log "promtool $PROMTOOL_VERSION: downloading dependencies"
go mod download >/dev/null 2>&1 || true
total=$(go list -tags remove_all_sd -deps "$PKG" 2>/dev/null | wc -l || echo '?')
log "promtool $PROMTOOL_VERSION: compiling $PKG (~$total packages; a cold build takes several minutes)"

ld="-s -w -X github.com/prometheus/common/version.Version=$PROMTOOL_VERSION"
ld+=" -X github.com/prometheus/common/version.Revision=unknown-from-go-module-proxy"
ld+=" -X github.com/prometheus/common/version.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"
start=$SECONDS
go build -v -p "$JOBS" -tags remove_all_sd -trimpath -ldflags "$ld" -o "$tmp/bin/promtool" "$PKG" >"$w/build.log" 2>&1 &
pid=$!
# progress every 15 s, as build.sh prints it
while kill -0 "$pid" 2>/dev/null; do
  for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
    sleep 1; kill -0 "$pid" 2>/dev/null || break 2
  done
  n=$(grep -c -v -e '^#' -e ': ' "$w/build.log" || true)
  log "  compiled $n/$total packages, $((SECONDS - start))s elapsed"
done
if ! wait "$pid"; then
  log "go build failed; last lines of $w/build.log:"
  tail -n 40 "$w/build.log" >&2
  exit 1
fi
"$tmp/bin/promtool" --version >/dev/null || { log "the built promtool does not run"; exit 1; }

printf '%s\n' "promtool $PROMTOOL_VERSION built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - t0))s" >"$tmp/.stamp"
trap - EXIT
rm -rf "$DIR.old"
[[ -e $DIR ]] && mv "$DIR" "$DIR.old"
mv "$tmp" "$DIR"
rm -rf "$DIR.old"
log "promtool $PROMTOOL_VERSION: done in $((SECONDS - t0))s -> $DIR/bin/promtool"
echo "$DIR/bin"

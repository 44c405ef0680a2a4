#!/usr/bin/env bash
# Build the local cluster's binaries from the Go module proxy, keyed by the
# versions pinned in cluster/versions.env:
#
#   $CACHE/k8s-$KUBERNETES_VERSION/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl}
#   $CACHE/etcd-$ETCD_VERSION/bin/etcd
#   $CACHE/helm-$HELM_VERSION/bin/helm
#   $CACHE/configmap-reload-$CONFIGMAP_RELOAD_VERSION/bin/configmap-reload
#   $CACHE/cloud-sql-proxy-$CLOUD_SQL_PROXY_VERSION/bin/cloud-sql-proxy
#   $CACHE/cloud-sql-proxy-$CLOUD_SQL_PROXY_V1_VERSION/bin/cloud_sql_proxy   (the v1 proxy)
#   $CACHE/pilot-agent-$ISTIO_VERSION/bin/pilot-agent   (and share/envoy_bootstrap_tmpl.json)
#   $CACHE/promtool-$PROMTOOL_VERSION/bin/promtool   (only when asked: scripts/check-rules.sh)
#
# where CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/hahaha. A component is rebuilt
# only when its directory has no .stamp (written last, after an atomic
# rename of a complete temp dir). Nothing is written into the repository.
#
# Usage: build.sh [all|k8s|etcd|helm|configmap-reload|cloud-sql-proxy|cloud-sql-proxy-v1|pilot-agent|promtool]...   (default: all,
#        which is what the cluster runs: promtool is built only when named)
#   BUILD_JOBS=N   go build -p (default 2)
#   print-paths:   build.sh --print-env  prints K8S_BIN= ETCD_BIN= ... without building
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../versions.env
source "$ROOT/cluster/versions.env"
: "${KUBERNETES_VERSION:?}" "${ETCD_VERSION:?}" "${HELM_VERSION:?}" "${CONFIGMAP_RELOAD_VERSION:?}" "${CLOUD_SQL_PROXY_VERSION:?}" "${CLOUD_SQL_PROXY_V1_VERSION:?}" "${ISTIO_VERSION:?}" "${PROMTOOL_VERSION:?}"

CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/hahaha
K8S_DIR=$CACHE/k8s-$KUBERNETES_VERSION
ETCD_DIR=$CACHE/etcd-$ETCD_VERSION
HELM_DIR=$CACHE/helm-$HELM_VERSION
CMR_DIR=$CACHE/configmap-reload-$CONFIGMAP_RELOAD_VERSION
CSP_DIR=$CACHE/cloud-sql-proxy-$CLOUD_SQL_PROXY_VERSION
CSP1_DIR=$CACHE/cloud-sql-proxy-$CLOUD_SQL_PROXY_V1_VERSION
PILOT_DIR=$CACHE/pilot-agent-$ISTIO_VERSION
PROMTOOL_DIR=$CACHE/promtool-$PROMTOOL_VERSION

if [[ ${1:-} == --print-env ]]; then
  echo "K8S_BIN=$K8S_DIR/bin"
  echo "ETCD_BIN=$ETCD_DIR/bin"
  echo "HELM_BIN=$HELM_DIR/bin"
  echo "CONFIGMAP_RELOAD_BIN=$CMR_DIR/bin"
  echo "CLOUD_SQL_PROXY_BIN=$CSP_DIR/bin"
  echo "CLOUD_SQL_PROXY_V1_BIN=$CSP1_DIR/bin"
  echo "PILOT_AGENT_BIN=$PILOT_DIR/bin"
  echo "PROMTOOL_BIN=$PROMTOOL_DIR/bin"
  exit 0
fi

command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -mod=mod -buildvcs=false"
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
JOBS=${BUILD_JOBS:-2}

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# run_go_build LOG TOTAL ARGS... : runs `go build -v ARGS` in the current
# directory, printing "compiled N/TOTAL packages" every 15s while it runs.
run_go_build() {
  local logf=$1 total=$2; shift 2
  local start=$SECONDS
  go build -v -p "$JOBS" "$@" >"$logf" 2>&1 &
  local pid=$! n
  while kill -0 "$pid" 2>/dev/null; do
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
      sleep 1; kill -0 "$pid" 2>/dev/null || break 2
    done
    n=$(grep -c -v -e '^#' -e ': ' "$logf" || true)
    log "  compiled $n/$total packages, $((SECONDS - start))s elapsed"
  done
  if ! wait "$pid"; then
    log "go build failed; last lines of $logf:"
    tail -n 40 "$logf" >&2
    return 1
  fi
  log "  go build finished in $((SECONDS - start))s"
}

# count_deps [GO LIST FLAGS] PKGS... : number of packages `go build` may have to compile.
count_deps() { go list -deps "$@" 2>/dev/null | wc -l || echo '?'; }

# begin DIR: prints a fresh temp dir next to DIR (for an atomic rename).
begin() {
  local dir=$1
  mkdir -p "$(dirname "$dir")"
  # we hold the lock: temp dirs of this component are from aborted builds
  rm -rf "$dir".tmp.*
  local tmp
  tmp=$(mktemp -d "$dir.tmp.XXXXXX")
  chmod 755 "$tmp"
  mkdir -p "$tmp/bin"
  echo "$tmp"
}

# commit TMP DIR STAMP-TEXT: moves the finished temp dir into place.
commit() {
  local tmp=$1 dir=$2
  printf '%s\n' "$3" >"$tmp/.stamp"
  rm -rf "$dir.old"
  [[ -e $dir ]] && mv "$dir" "$dir.old"
  mv "$tmp" "$dir"
  rm -rf "$dir.old"
}

fresh() { [[ -f $1/.stamp ]]; }

# lock DIR: serialises builds of one component (several engineers, CI and a
# demo may run this script at once); the lock goes when the subshell ends.
lock() {
  mkdir -p "$(dirname "$1")"
  exec {LOCK_FD}>"$1.lock"
  if ! flock -n "$LOCK_FD"; then
    log "another build of $(basename "$1") is running; waiting for it"
    flock "$LOCK_FD"
  fi
}
unlock() { exec {LOCK_FD}>&-; }

# A work dir holding a go.mod of our own (modules with replace directives
# refuse `go install pkg@version`).
workdir() {
  local w=$CACHE/work/$1
  mkdir -p "$w"
  echo "$w"
}

gomod_path() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p'; }
# module_dir MODULE@VERSION: where the module's files are, downloaded if need be.
module_dir() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'; }

build_k8s() {
  if fresh "$K8S_DIR"; then log "kubernetes $KUBERNETES_VERSION: up to date ($K8S_DIR)"; return; fi
  lock "$K8S_DIR"
  if fresh "$K8S_DIR"; then unlock; log "kubernetes $KUBERNETES_VERSION: built meanwhile ($K8S_DIR)"; return; fi
  local t0=$SECONDS v=$KUBERNETES_VERSION
  log "kubernetes $v: resolving modules"
  local upstream_mod
  upstream_mod=$(gomod_path "k8s.io/kubernetes@$v")
  [[ -f $upstream_mod ]] || { log "cannot download k8s.io/kubernetes@$v"; return 1; }
  # staging modules are published as v0.<minor>.<patch> for v1.<minor>.<patch>
  local staging_v="v0.${v#v1.}"
  local w
  w=$(workdir "k8s-$v")
  {
    echo "module hahaha.local/k8s-build"
    echo
    sed -n 's/^go \(.*\)$/go \1/p' "$upstream_mod"
    grep '^godebug ' "$upstream_mod" || true
    echo
    echo "require k8s.io/kubernetes $v"
    echo
    echo "replace ("
    # derive the staging list from upstream's own replace block:
    #   k8s.io/foo => ./staging/src/k8s.io/foo
    awk -v sv="$staging_v" '
      $2 == "=>" && $3 ~ /^\.\/staging\/src\// { printf "\t%s => %s %s\n", $1, $1, sv }
      $1 == "replace" && $3 == "=>" && $4 ~ /^\.\/staging\/src\// { printf "\t%s => %s %s\n", $2, $2, sv }
    ' "$upstream_mod"
    echo ")"
  } >"$w/go.mod"
  local nrep
  nrep=$(grep -c " => .* $staging_v\$" "$w/go.mod" || true)
  [[ $nrep -gt 0 ]] || { log "found no staging replaces in $upstream_mod"; return 1; }
  log "kubernetes $v: go.mod in $w with $nrep staging replaces ($staging_v)"
  local pkgs=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
              k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  local minor=${v#v1.}; minor=${minor%%.*}
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local ld="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    # the module proxy serves no commit id; say so rather than invent one
    ld+=" -X $p.gitCommit=unknown-from-go-module-proxy -X $p.gitTreeState=archive -X $p.buildDate=$date"
  done
  (
    cd "$w"
    log "kubernetes $v: downloading dependencies"
    go mod download >/dev/null 2>&1 || true
    local total; total=$(count_deps "${pkgs[@]}")
    log "kubernetes $v: compiling kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (~$total packages; a cold build takes a while)"
    local tmp; tmp=$(begin "$K8S_DIR")
    run_go_build "$w/build.log" "$total" -trimpath -ldflags "$ld" -o "$tmp/bin/" "${pkgs[@]}"
    commit "$tmp" "$K8S_DIR" "kubernetes $v built $date in $((SECONDS - t0))s"
  )
  unlock
  log "kubernetes $v: done in $((SECONDS - t0))s -> $K8S_DIR/bin"
}

# build_simple NAME DIR MODULE VERSION PKG BINARY [LDFLAGS] [BUILD TAGS]
# build_simple NAME DIR MODULE VERSION PACKAGE BINARY [LDFLAGS] [TAGS] [SHARE]: builds PACKAGE of
# MODULE@VERSION into DIR/bin/BINARY, and copies SHARE (paths inside the module, `src:name`) into
# DIR/share/name.
build_simple() {
  local name=$1 dir=$2 mod=$3 ver=$4 pkg=$5 bin=$6 extra_ld=${7:-} tags=${8:-} share=${9:-}
  if fresh "$dir"; then log "$name $ver: up to date ($dir)"; return; fi
  lock "$dir"
  if fresh "$dir"; then unlock; log "$name $ver: built meanwhile ($dir)"; return; fi
  local t0=$SECONDS w
  w=$(workdir "$name-$ver")
  local upstream_mod
  upstream_mod=$(gomod_path "$mod@$ver")
  [[ -f $upstream_mod ]] || { log "cannot download $mod@$ver"; return 1; }
  {
    echo "module hahaha.local/$name-build"
    echo
    sed -n 's/^go \(.*\)$/go \1/p' "$upstream_mod"
    echo
    echo "require $mod $ver"
  } >"$w/go.mod"
  (
    cd "$w"
    log "$name $ver: downloading dependencies"
    go mod download >/dev/null 2>&1 || true
    local total; total=$(count_deps -tags "$tags" "$pkg")
    log "$name $ver: compiling $pkg (~$total packages)"
    local tmp; tmp=$(begin "$dir")
    run_go_build "$w/build.log" "$total" -tags "$tags" -trimpath -ldflags "-s -w $extra_ld" -o "$tmp/bin/$bin" "$pkg"
    if [[ -n $share ]]; then
      mkdir -p "$tmp/share"
      local f src
      src=$(module_dir "$mod@$ver")
      for f in $share; do cp "$src/${f%%:*}" "$tmp/share/${f#*:}"; done
    fi
    commit "$tmp" "$dir" "$name $ver built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - t0))s"
  )
  unlock
  log "$name $ver: done in $((SECONDS - t0))s -> $dir/bin/$bin"
}

build_etcd() {
  build_simple etcd "$ETCD_DIR" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3 etcd
}

build_helm() {
  local major=${HELM_VERSION%%.*}
  local mod=helm.sh/helm
  [[ $major == v2 || $major == v1 || $major == v0 ]] || mod=helm.sh/helm/$major
  build_simple helm "$HELM_DIR" "$mod" "$HELM_VERSION" "$mod/cmd/helm" helm \
    "-X $mod/internal/version.version=$HELM_VERSION"
}

build_configmap_reload() {
  # The checksum DB has no entry for this module (see versions.env); skip
  # the checksum-DB lookup for it alone. Its dependencies are still verified.
  GONOSUMDB=github.com/jimmidyson/configmap-reload${GONOSUMDB:+,$GONOSUMDB} \
  build_simple configmap-reload "$CMR_DIR" github.com/jimmidyson/configmap-reload \
    "$CONFIGMAP_RELOAD_VERSION" github.com/jimmidyson/configmap-reload configmap-reload
}

build_cloud_sql_proxy() {
  # The main package is the module root; its go.mod has no replace
  # directives. The version it reports is embedded from cmd/version.txt.
  build_simple cloud-sql-proxy "$CSP_DIR" github.com/GoogleCloudPlatform/cloud-sql-proxy/v2 \
    "$CLOUD_SQL_PROXY_VERSION" github.com/GoogleCloudPlatform/cloud-sql-proxy/v2 cloud-sql-proxy
}

build_cloud_sql_proxy_v1() {
  # The v1 proxy's module (github.com/GoogleCloudPlatform/cloudsql-proxy, no /v2) has no replace
  # directives; its main package is cmd/cloud_sql_proxy, and the binary keeps its name.
  build_simple cloud-sql-proxy "$CSP1_DIR" github.com/GoogleCloudPlatform/cloudsql-proxy \
    "$CLOUD_SQL_PROXY_V1_VERSION" github.com/GoogleCloudPlatform/cloudsql-proxy/cmd/cloud_sql_proxy cloud_sql_proxy
}

build_pilot_agent() {
  # Istio's pilot-agent, the istio-proxy container's entrypoint (it starts Envoy, which cannot be
  # built here: the tests give it a look-alike). Its bootstrap template comes from the same module.
  build_simple pilot-agent "$PILOT_DIR" istio.io/istio "$ISTIO_VERSION" istio.io/istio/pilot/cmd/pilot-agent pilot-agent \
    "-X istio.io/istio/pkg/version.buildVersion=$ISTIO_VERSION" "" \
    tools/packaging/common/envoy_bootstrap.json:envoy_bootstrap_tmpl.json
}

build_promtool() {
  # Prometheus' promtool, for the alert rules' lint and unit tests. Its rule checks need none of
  # the service-discovery plugins: -tags remove_all_sd compiles a fifth fewer packages. The
  # module's version v0.3XX.Y is Prometheus v3.XX.Y.
  local mod=github.com/prometheus/prometheus v=github.com/prometheus/common/version
  # build_simple does not carry replace directives over (the Kubernetes build does): refuse them.
  if ! fresh "$PROMTOOL_DIR" && grep -q '^replace' "$(gomod_path "$mod@$PROMTOOL_VERSION")"; then
    log "$mod@$PROMTOOL_VERSION has replace directives, which this build does not carry over"
    return 1
  fi
  build_simple promtool "$PROMTOOL_DIR" "$mod" "$PROMTOOL_VERSION" "$mod/cmd/promtool" promtool \
    "-X $v.Version=$PROMTOOL_VERSION -X $v.Revision=unknown-from-go-module-proxy -X $v.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)" \
    remove_all_sd
  "$PROMTOOL_DIR/bin/promtool" --version >/dev/null || { log "the built promtool does not run"; return 1; }
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(all)
T0=$SECONDS
for t in "${targets[@]}"; do
  case $t in
    all) build_etcd; build_k8s; build_helm; build_configmap_reload; build_cloud_sql_proxy; build_cloud_sql_proxy_v1; build_pilot_agent ;;
    k8s|kubernetes) build_k8s ;;
    etcd) build_etcd ;;
    helm) build_helm ;;
    configmap-reload) build_configmap_reload ;;
    cloud-sql-proxy) build_cloud_sql_proxy ;;
    cloud-sql-proxy-v1) build_cloud_sql_proxy_v1 ;;
    pilot-agent) build_pilot_agent ;;
    promtool) build_promtool ;;
    *) echo "usage: $0 [all|k8s|etcd|helm|configmap-reload|cloud-sql-proxy|cloud-sql-proxy-v1|pilot-agent|promtool]..." >&2; exit 2 ;;
  esac
done
log "all requested binaries ready (${SECONDS}s total, $((SECONDS - T0))s this run)"

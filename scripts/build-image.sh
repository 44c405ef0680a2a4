#!/usr/bin/env bash
# Builds the real image from the Dockerfile with buildah (no Docker engine needed) and smoke-tests
# it: --version, --help and `explain` run inside the image as its user 65532.
#
# Without registry access the Dockerfile's base images (node:24-bookworm-slim and
# gcr.io/distroless/nodejs24-debian12:nonroot) cannot be pulled. BASES=local (the default when
# they are not in buildah's storage) assembles stand-ins under those names from this machine's
# files: the checkout's Node 24 binary and its libraries, npm and a shell for the build stages;
# only /nodejs/bin/node for the runtime. They carry the label hahaha.local-stand-in=true, and an
# image built on them is for checking the Dockerfile, never for pushing. BASES=pull uses the real
# bases (buildah pulls them).
#
#   scripts/build-image.sh [TAG]        default TAG: localhost/hahaha:dev
# npm runs against the local npm cache (~/.npm, prefer-offline), mounted into the build.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TAG=${1:-localhost/hahaha:dev}
NODE_IMAGE=docker.io/library/node:24-bookworm-slim
RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot
BUILDAH=(buildah --storage-driver "${STORAGE_DRIVER:-vfs}")

say() { printf '[build-image] %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }

command -v buildah >/dev/null || die "buildah not found (Debian: apt-get install buildah)"
NODE=$ROOT/node_modules/node/bin/node
[[ -x $NODE ]] || NODE=$(command -v node)
(($("$NODE" -p 'process.versions.node.split(".")[0]') >= 24)) || die "no Node 24 for the stand-in bases"
NODE=$(readlink -f "$NODE")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hahaha-image.XXXXXX")
CONTAINERS=()
cleanup() {
  for c in "${CONTAINERS[@]}"; do "${BUILDAH[@]}" rm "$c" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

have_image() { "${BUILDAH[@]}" inspect --type image "$1" >/dev/null 2>&1; }

# libs_of BIN...: the shared libraries and loader the binaries need.
libs_of() { ldd "$@" | awk '/=>/ { print $3 } /^[[:space:]]*\/lib64\// { print $1 }' | sort -u; }

# stand_in NODE_PATH [BIN...]: a working container from scratch with node at NODE_PATH, the BINs
# and their libraries; sets SI_CONTAINER and SI_ROOT (its mounted root).
stand_in() {
  local node_path=$1; shift
  local c m lib
  c=$("${BUILDAH[@]}" from scratch)
  CONTAINERS+=("$c")
  m=$("${BUILDAH[@]}" mount "$c")
  SI_CONTAINER=$c
  SI_ROOT=$m
  mkdir -p "$m"/{etc,tmp,root,home/nonroot}
  chmod 1777 "$m/tmp"
  chown 65532:65532 "$m/home/nonroot"
  for lib in $(libs_of "$NODE" "$@"); do
    mkdir -p "$m$(dirname "$lib")"
    cp -L "$lib" "$m$lib"
  done
  mkdir -p "$m$(dirname "$node_path")"
  cp "$NODE" "$m$node_path"
  for bin in "$@"; do
    mkdir -p "$m$(dirname "$bin")"
    cp -L "$bin" "$m$bin"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$m/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$m/etc/group"
}

BASES=${BASES:-}
if [[ -z $BASES ]]; then
  if have_image "$NODE_IMAGE" && have_image "$RUNTIME_IMAGE"; then BASES=present; else BASES=local; fi
fi
case $BASES in
  local)
    say "assembling stand-ins for $NODE_IMAGE and $RUNTIME_IMAGE from local files"
    NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
    [[ -f $NPM_DIR/package.json ]] || die "cannot find npm's package directory"
    shells=()
    for b in sh bash env mkdir rm cp mv ls cat chmod ln; do shells+=("$(readlink -f "$(command -v "$b")")"); done
    stand_in /usr/local/bin/node "${shells[@]}"
    m=$SI_ROOT c=$SI_CONTAINER
    for b in sh bash env mkdir rm cp mv ls cat chmod ln; do
      [[ -e $m/bin/$b ]] || { mkdir -p "$m/bin"; ln -sf "$(readlink -f "$(command -v "$b")")" "$m/bin/$b"; }
    done
    mkdir -p "$m/usr/local/lib/node_modules"
    cp -a "$NPM_DIR" "$m/usr/local/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$m/usr/local/bin/npm"
    "${BUILDAH[@]}" config --env PATH=/usr/local/bin:/usr/bin:/bin --label hahaha.local-stand-in=true --cmd node "$c"
    "${BUILDAH[@]}" commit -q --rm "$c" "$NODE_IMAGE" >/dev/null
    unset 'CONTAINERS[-1]'

    stand_in /nodejs/bin/node
    c=$SI_CONTAINER
    "${BUILDAH[@]}" config --user 65532 --entrypoint '["/nodejs/bin/node"]' --label hahaha.local-stand-in=true "$c"
    "${BUILDAH[@]}" commit -q --rm "$c" "$RUNTIME_IMAGE" >/dev/null
    unset 'CONTAINERS[-1]'
    ;;
  pull | present) ;;
  *) die "BASES must be local, pull or present" ;;
esac

mkdir -p "$HOME/.npm"
printf 'prefer-offline=true\nupdate-notifier=false\n' >"$WORK/npmrc"
pull=--pull=never
[[ $BASES == pull ]] && pull=--pull
say "building $TAG"
t0=$SECONDS
"${BUILDAH[@]}" bud "$pull" --isolation chroot --layers=false \
  -v "$HOME/.npm:/root/.npm" -v "$WORK/npmrc:/root/.npmrc:ro" \
  --build-arg "VERSION=$("$NODE" -p 'require(process.argv[1]).version' "$ROOT/package.json")" \
  --build-arg "REVISION=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)" \
  -t "$TAG" "$ROOT" >"$WORK/build.log" 2>&1 || { tail -n 40 "$WORK/build.log" >&2; die "buildah bud failed"; }
say "built $TAG in $((SECONDS - t0))s"

# ---------------------------------------------------------------- smoke test, inside the image
config=$("${BUILDAH[@]}" inspect --type image "$TAG")
# shellcheck disable=SC2016 # JavaScript in single quotes: nothing for the shell to expand
"$NODE" -e '
  const c = JSON.parse(process.argv[1]).OCIv1.config;
  const want = { User: "65532:65532", Entrypoint: ["/nodejs/bin/node", "--max-semi-space-size=1", "--optimize-for-size", "/app/bin/hahaha.js"], Cmd: ["run"] };
  for (const [k, v] of Object.entries(want)) if (JSON.stringify(c[k]) !== JSON.stringify(v)) throw new Error(`${k} is ${JSON.stringify(c[k])}`);
  if (!c.ExposedPorts?.["8999/tcp"]) throw new Error("port 8999 not exposed");
  for (const l of ["title", "source", "version", "revision", "licenses"]) if (!c.Labels?.[`org.opencontainers.image.${l}`]) throw new Error(`no OCI label ${l}`);
' "$config" || die "image config is not as the Dockerfile says"

c=$("${BUILDAH[@]}" from --pull=never "$TAG")
CONTAINERS+=("$c")
m=$("${BUILDAH[@]}" mount "$c")
[[ ! -e $m/app/node_modules/typescript && ! -e $m/app/src ]] || die "dev dependencies or sources in the image"
in_image() { "${BUILDAH[@]}" run --isolation chroot --user 65532:65532 "$c" -- /nodejs/bin/node --max-semi-space-size=1 --optimize-for-size /app/bin/hahaha.js "$@"; }
version=$(in_image --version) || die "hahaha --version failed in the image"
in_image --help | grep -q 'hahaha explain' || die "hahaha --help failed in the image"
cat >"$m/tmp/pod.json" <<'JSON'
{"apiVersion":"v1","kind":"Pod",
 "metadata":{"name":"job-x","namespace":"team","uid":"u1","labels":{"app":"job","nais.io/naisjob":"true"}},
 "spec":{"restartPolicy":"Never","containers":[{"name":"job","image":"a"},{"name":"linkerd-proxy","image":"b"}]},
 "status":{"phase":"Running","containerStatuses":[
   {"name":"job","ready":false,"restartCount":0,"image":"a","imageID":"","state":{"terminated":{"exitCode":0,"startedAt":"2026-01-01T00:00:00Z","finishedAt":"2026-01-01T00:01:00Z"}}},
   {"name":"linkerd-proxy","ready":true,"restartCount":0,"image":"b","imageID":"","state":{"running":{"startedAt":"2026-01-01T00:00:00Z"}}}]}}
JSON
chmod 644 "$m/tmp/pod.json"
in_image explain /tmp/pod.json | grep -q '"decision": "reap"' || die "hahaha explain failed in the image"
size=$("${BUILDAH[@]}" images --format '{{.Size}}' "$TAG")
say "OK: $TAG ($size): hahaha $version runs inside it as uid 65532"
[[ $BASES != local ]] || say "built on local stand-in bases: it checks the Dockerfile; do not push it"

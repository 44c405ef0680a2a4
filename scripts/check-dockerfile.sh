#!/usr/bin/env bash
# Replays the Dockerfile without a container engine, so that a broken build step fails CI:
#
#   1. builds the build context from .dockerignore's allow-list (`*`, then `!path` lines) in a
#      clean temp directory;
#   2. gives every stage its own root directory and runs its instructions there, in order:
#      WORKDIR, ENV, COPY (from the context or, with --from, from an earlier stage's root) and
#      RUN (with bash, using the local Node 24 in place of the base image's);
#   3. runs the final stage's ENTRYPOINT + CMD against the produced /app tree, as uid 65532 on a
#      tree it cannot write to (like a read-only root filesystem): `--help`, `--version`,
#      `explain` on a finished Naisjob pod, and `run` (the CMD) against an unreachable API
#      server until it serves /metrics and exits 0 on SIGTERM.
#
# What it cannot check: the base images themselves (they come from registries) and USER, LABEL,
# EXPOSE, which it only parses. Any other instruction fails the check until this script learns it.
#
#   scripts/check-dockerfile.sh     KEEP=1 keeps the temp directory; DOCKERFILE=path checks another file
# npm runs with --prefer-offline, so a warm npm cache (the checkout's `npm ci`) makes it fast.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKERFILE=${DOCKERFILE:-$ROOT/Dockerfile}
RUN_UID=65532

say() { printf '[check-dockerfile] %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }

# A Node 24: the one on PATH, else the checkout's `node` devDependency.
NODE=$(command -v node || true)
if [[ -z $NODE ]] || (($("$NODE" -p 'process.versions.node.split(".")[0]') < 24)); then
  NODE=$ROOT/node_modules/node/bin/node
  [[ -x $NODE ]] || die "no Node 24 found (PATH or node_modules/node/bin/node)"
fi
NODE=$(readlink -f "$NODE")
command -v npm >/dev/null || die "npm not found"
say "node $("$NODE" --version) at $NODE, npm $(npm --version)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hahaha-dockerfile.XXXXXX")
chmod 755 "$WORK"
cleanup() { if [[ -z ${KEEP:-} ]]; then rm -rf "$WORK"; else say "kept $WORK"; fi; }
trap cleanup EXIT

# ---------------------------------------------------------------- build context
CONTEXT=$WORK/context
mkdir -p "$CONTEXT"
mapfile -t IGNORE < <(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$ROOT/.dockerignore")
[[ ${IGNORE[0]:-} == '*' ]] || die ".dockerignore must start with '*' (an allow-list)"
for line in "${IGNORE[@]:1}"; do
  [[ $line == '!'* ]] || die ".dockerignore: only '!path' lines may follow '*', got: $line"
  path=${line#!}
  path=${path%/}
  [[ -e $ROOT/$path ]] || die ".dockerignore allows $path, which does not exist"
  mkdir -p "$CONTEXT/$(dirname "$path")"
  cp -a "$ROOT/$path" "$CONTEXT/$path"
done
say "context: ${IGNORE[*]:1}"

# ---------------------------------------------------------------- parse
# Joins continuation lines; drops comments and blank lines.
mapfile -t INSTRUCTIONS < <(awk '
  /^[[:space:]]*#/ && cur == "" { next }
  /^[[:space:]]*$/ { next }
  {
    line = $0
    if (sub(/\\[[:space:]]*$/, "", line)) { cur = cur line " "; next }
    print cur line; cur = ""
  }
  END { if (cur != "") print cur }
' "$DOCKERFILE")

declare -A ARGS=() STAGE_ROOT=()
STAGE=''
STAGE_N=0
WORKDIR=/
declare -a STAGE_ENV=()
ENTRYPOINT_JSON=''
CMD_JSON=''

# expand TEXT: substitutes ${NAME} and $NAME from ARGS (build arguments).
expand() {
  local s=$1 name
  for name in "${!ARGS[@]}"; do
    s=${s//\$\{$name\}/${ARGS[$name]}}
    s=${s//\$$name/${ARGS[$name]}}
  done
  printf '%s' "$s"
}

# in_stage PATH: the host path of PATH (absolute or relative to WORKDIR) in the current stage.
in_stage() {
  local p=$1
  [[ $p == /* ]] || p=${WORKDIR%/}/$p
  printf '%s%s' "${STAGE_ROOT[$STAGE]}" "$p"
}

# copy_into SRC... DEST: Docker COPY semantics for files and directories (a directory's
# contents are copied; a destination ending in / or with several sources is a directory).
copy_into() {
  local dest=${!#} n=$(($# - 1)) src
  local -a srcs=("${@:1:$n}")
  if [[ $dest == */ || $n -gt 1 ]]; then mkdir -p "$dest"; fi
  for src in "${srcs[@]}"; do
    [[ -e $src ]] || die "COPY source $src does not exist (not built, or not in .dockerignore's allow-list)"
    if [[ -d $src ]]; then
      mkdir -p "$dest"
      cp -a "$src/." "$dest/"
    elif [[ -d $dest ]]; then
      cp -a "$src" "$dest/"
    else
      mkdir -p "$(dirname "$dest")"
      cp -a "$src" "$dest"
    fi
  done
}

T0=$SECONDS
for ins in "${INSTRUCTIONS[@]}"; do
  # shellcheck disable=SC2001
  ins=$(sed 's/^[[:space:]]*//' <<<"$ins")
  keyword=${ins%%[[:space:]]*}
  rest=${ins#"$keyword"}
  rest=${rest#"${rest%%[![:space:]]*}"}
  keyword=${keyword^^}
  case $keyword in
    ARG)
      name=${rest%%=*}
      if [[ $rest == *=* ]]; then value=${rest#*=}; else value=''; fi
      value=${value#\"}; value=${value%\"}
      [[ -n ${ARGS[$name]+x} && -z $value ]] || ARGS[$name]=$value
      ;;
    FROM)
      read -r image as name <<<"$(expand "$rest")"
      STAGE_N=$((STAGE_N + 1))
      if [[ ${as^^} == AS && -n $name ]]; then STAGE=$name; else STAGE=stage$STAGE_N; fi
      STAGE_ROOT[$STAGE]=$WORK/stages/$STAGE
      mkdir -p "${STAGE_ROOT[$STAGE]}"
      chmod 755 "$WORK/stages" "${STAGE_ROOT[$STAGE]}"
      WORKDIR=/
      STAGE_ENV=()
      ENTRYPOINT_JSON=''
      CMD_JSON=''
      say "stage $STAGE (from $image)"
      ;;
    WORKDIR)
      [[ -n $STAGE ]] || die "WORKDIR before FROM"
      WORKDIR=$(expand "$rest")
      [[ $WORKDIR == /* ]] || WORKDIR=/$WORKDIR
      mkdir -p "$(in_stage "$WORKDIR")"
      ;;
    ENV)
      # KEY=VALUE pairs (no spaces inside values).
      for pair in $(expand "$rest"); do
        [[ $pair == *=* ]] || die "ENV needs KEY=VALUE, got: $rest"
        v=${pair#*=}; v=${v#\"}; v=${v%\"}
        STAGE_ENV+=("${pair%%=*}=$v")
      done
      ;;
    COPY)
      from=''
      read -r -a words <<<"$(expand "$rest")"
      while [[ ${words[0]} == --* ]]; do
        case ${words[0]} in
          --from=*) from=${words[0]#--from=} ;;
          --chown=* | --chmod=* | --link) ;;
          *) die "COPY option ${words[0]} is not supported here" ;;
        esac
        words=("${words[@]:1}")
      done
      n=${#words[@]}
      ((n >= 2)) || die "COPY needs a source and a destination: $ins"
      dest=$(in_stage "${words[n - 1]}")
      [[ ${words[n - 1]} == */ ]] && dest=$dest/
      srcs=()
      for s in "${words[@]:0:n-1}"; do
        if [[ -n $from ]]; then
          [[ -n ${STAGE_ROOT[$from]:-} ]] || die "COPY --from=$from: no such stage"
          srcs+=("${STAGE_ROOT[$from]}/${s#/}")
        else
          srcs+=("$CONTEXT/${s#./}")
        fi
      done
      copy_into "${srcs[@]}" "$dest"
      say "  COPY ${words[*]}${from:+ (from $from)}"
      ;;
    RUN)
      [[ $rest != '['* ]] || die "RUN in exec form is not supported here: $rest"
      say "  RUN $rest"
      t=$SECONDS
      (
        cd "$(in_stage "$WORKDIR")"
        PATH="$(dirname "$NODE"):$PATH"
        export PATH npm_config_prefer_offline=true npm_config_update_notifier=false
        for kv in "${STAGE_ENV[@]}"; do export "${kv?}"; done
        bash -Eeuo pipefail -c "$rest"
      ) >"$WORK/run.log" 2>&1 || { tail -n 40 "$WORK/run.log" >&2; die "RUN failed in stage $STAGE: $rest"; }
      say "    ok in $((SECONDS - t))s"
      ;;
    ENTRYPOINT) ENTRYPOINT_JSON=$rest ;;
    CMD) CMD_JSON=$rest ;;
    USER | LABEL | EXPOSE) ;;
    *) die "instruction $keyword is not known to this script; teach it before using it" ;;
  esac
done
[[ -n $STAGE ]] || die "no FROM in $DOCKERFILE"

# ---------------------------------------------------------------- run the final stage
FINAL=${STAGE_ROOT[$STAGE]}
[[ $ENTRYPOINT_JSON == '['* ]] || die "ENTRYPOINT must use the exec (JSON) form"
# The entrypoint's program is the base image's node; its arguments are paths in the image.
mapfile -t ENTRY < <("$NODE" -e 'for (const a of JSON.parse(process.argv[1])) console.log(a)' "$ENTRYPOINT_JSON")
[[ ${ENTRY[0]} == */node ]] || die "ENTRYPOINT should start with the base image's node, got ${ENTRY[0]}"
mapfile -t CMD_ARGS < <("$NODE" -e 'for (const a of JSON.parse(process.argv[1] || "[]")) console.log(a)' "$CMD_JSON")
# node's own flags (e.g. --max-semi-space-size=1) come before the script, and are kept.
NODE_FLAGS=()
i=1
while [[ ${ENTRY[i]:-} == --* ]]; do
  NODE_FLAGS+=("${ENTRY[i]}")
  i=$((i + 1))
done
SCRIPT=$FINAL${ENTRY[i]:-}
[[ -n ${ENTRY[i]:-} && -f $SCRIPT ]] || die "ENTRYPOINT script ${ENTRY[i]:-(none)} is not in the image"
[[ -f $FINAL/app/dist/cli.js ]] || die "/app/dist/cli.js missing: the image would run the TypeScript sources"
[[ ! -e $FINAL/app/src ]] || die "/app/src is in the image; only dist/ belongs there"
# Nothing the lock file marks dev-only may reach the runtime image.
# shellcheck disable=SC2016 # JavaScript in single quotes: nothing for the shell to expand
dev_found=$("$NODE" -e '
  const { existsSync } = require("node:fs");
  const [lock, app] = process.argv.slice(1);
  const found = Object.entries(require(lock).packages)
    .filter(([path, p]) => path !== "" && p.dev && existsSync(`${app}/${path}`))
    .map(([path]) => path);
  console.log(found.join(" "));
' "$ROOT/package-lock.json" "$FINAL/app")
[[ -z $dev_found ]] || die "dev-only packages in the runtime image: $dev_found"
[[ -d $FINAL/app/node_modules/pino ]] || die "production dependencies missing from the runtime image"
[[ ${CMD_ARGS[0]:-} == run ]] || die "CMD should be [\"run\"], got ${CMD_JSON:-nothing}"

# No writes anywhere in the tree: root owns it, the process runs as $RUN_UID (as in the chart).
RUN_ENV=()
chown -R 0:0 "$FINAL"
chmod -R go-w "$FINAL"
as_image_user() {
  (
    cd /
    exec env -i PATH=/usr/bin:/bin HOME=/nonexistent "${STAGE_ENV[@]}" "${RUN_ENV[@]}" \
      setpriv --reuid "$RUN_UID" --regid "$RUN_UID" --clear-groups "$NODE" "${NODE_FLAGS[@]}" "$SCRIPT" "$@"
  )
}

out=$(as_image_user --help) || die "hahaha --help failed"
grep -q 'hahaha explain' <<<"$out" || die "hahaha --help printed unexpected text: $out"
say "ran: hahaha --help"
version=$(as_image_user --version) || die "hahaha --version failed"
expected=$("$NODE" -p 'require(process.argv[1]).version' "$ROOT/package.json")
[[ $version == "$expected" ]] || die "hahaha --version printed $version, expected $expected"
say "ran: hahaha --version -> $version"

POD=$WORK/pod.json
cat >"$POD" <<'JSON'
{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {
    "name": "tiltak-okonomi-avstemming-brb7c",
    "namespace": "team",
    "uid": "6f1b0a5e-0000-4000-8000-000000000001",
    "labels": { "app": "tiltak-okonomi-avstemming", "nais.io/naisjob": "true" }
  },
  "spec": {
    "restartPolicy": "Never",
    "containers": [
      { "name": "tiltak-okonomi-avstemming", "image": "app:1" },
      { "name": "linkerd-proxy", "image": "linkerd/proxy:2" }
    ]
  },
  "status": {
    "phase": "Running",
    "containerStatuses": [
      { "name": "tiltak-okonomi-avstemming", "ready": false, "restartCount": 0, "image": "app:1", "imageID": "", "state": { "terminated": { "exitCode": 0, "reason": "Completed", "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:01:00Z" } } },
      { "name": "linkerd-proxy", "ready": true, "restartCount": 0, "image": "linkerd/proxy:2", "imageID": "", "state": { "running": { "startedAt": "2026-01-01T00:00:00Z" } } }
    ]
  }
}
JSON
chmod 644 "$POD"
out=$(as_image_user explain "$POD" 2>&1) || die "hahaha explain failed: $out"
decision=$("$NODE" -e 'const o = JSON.parse(process.argv[1]); console.log(o.decision, o.targets.map((t) => t.container).join(","))' "$out")
[[ $decision == 'reap linkerd-proxy' ]] || die "explain decided '$decision', expected 'reap linkerd-proxy': $out"
say "ran: hahaha explain <finished Naisjob pod> -> $decision"
# The CMD: the daemon starts, serves metrics while the API is unreachable, stops on SIGTERM.
cat >"$WORK/kubeconfig" <<'YAML'
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
YAML
chmod 644 "$WORK/kubeconfig"
RUN_ENV=(KUBECONFIG="$WORK/kubeconfig" LEADER_ELECT=false METRICS_HOST=127.0.0.1 METRICS_PORT=0)
# Inline rather than through as_image_user, so that $! is the node process itself.
(
  cd /
  exec env -i PATH=/usr/bin:/bin HOME=/nonexistent "${STAGE_ENV[@]}" "${RUN_ENV[@]}" \
    setpriv --reuid "$RUN_UID" --regid "$RUN_UID" --clear-groups "$NODE" "${NODE_FLAGS[@]}" "$SCRIPT" "${CMD_ARGS[@]}"
) >"$WORK/run.out" 2>&1 &
daemon=$!
stop_daemon() { kill "$daemon" 2>/dev/null || true; }
trap 'stop_daemon; cleanup' EXIT
port=''
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*"address":{[^}]*"port":\([0-9]*\).*/\1/p' "$WORK/run.out" | head -n 1)
  [[ -n $port ]] && break
  kill -0 "$daemon" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $port ]]; then
  cat "$WORK/run.out" >&2
  die "hahaha run did not start serving metrics"
fi
metrics=$(curl -fsS "http://127.0.0.1:$port/metrics") || die "GET /metrics failed"
grep -q '^# TYPE hahaha_sidecar_shutdowns counter' <<<"$metrics" || die "/metrics lacks hahaha_sidecar_shutdowns"
kill -TERM "$daemon"
rc=0
wait "$daemon" || rc=$?
((rc == 0)) || { cat "$WORK/run.out" >&2; die "hahaha run exited $rc on SIGTERM, expected 0"; }
say "ran: hahaha ${CMD_ARGS[*]} -> served /metrics on 127.0.0.1:$port, exited 0 on SIGTERM"
say "OK: Dockerfile steps replayed and the image tree runs ($((SECONDS - T0))s)"

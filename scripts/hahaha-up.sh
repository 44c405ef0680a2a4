#!/usr/bin/env bash
# Start a hahaha instance against the local cluster, as a separate process holding only the
# permissions its Helm chart grants: the chart's RBAC objects are rendered with helm and
# applied, and hahaha gets a TokenRequest token of the chart's ServiceAccount (nothing else).
#
# The native sidecar admission webhook is on (as in the chart): hahaha serves it on a free
# loopback port with a certificate of the cluster CA, and the chart's MutatingWebhookConfiguration
# is applied with its clientConfig pointed at that URL (there is no Service networking here).
# HAHAHA_WEBHOOK=off starts hahaha without it and removes the configuration, for comparison.
#
# Writes $RUN/hahaha.kubeconfig, $RUN/hahaha.env (HAHAHA_METRICS_URL, HAHAHA_PID,
# HAHAHA_WEBHOOK_URL) and logs to $RUN/logs/hahaha.log. Extra environment for the daemon can be
# passed through, e.g.
#   LOG_LEVEL=debug scripts/hahaha-up.sh
# Usage: scripts/hahaha-up.sh [--rbac-only]
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../cluster/scripts/lib.sh"

NAMESPACE=${HAHAHA_NAMESPACE:-hahaha-system}
RELEASE=hahaha
[[ -f $RUN/kubeconfig.ready ]] || { say "no running cluster in $RUN: run npm run cluster:up"; exit 1; }
eval "$("$SCRIPTS/build.sh" --print-env)"
"$SCRIPTS/build.sh" helm >&2
KUBECTL=("$K8S_BIN/kubectl" --kubeconfig "$RUN/kubeconfig")
# The project's Node 24 (the node package of devDependencies), not whatever node is on PATH.
NODE=$HAHAHA_ROOT/node_modules/.bin/node
[[ -x $NODE ]] || { say "no $NODE: run npm ci first"; exit 1; }

"${KUBECTL[@]}" create namespace "$NAMESPACE" --dry-run=client -o yaml | "${KUBECTL[@]}" apply -f - >&2
RENDERED=$("$HELM_BIN/helm" template "$RELEASE" "$HAHAHA_ROOT/charts/hahaha" --namespace "$NAMESPACE")
APPLIED=$(printf '%s\n' "$RENDERED" |
  "$NODE" "$HAHAHA_ROOT/scripts/select-kinds.mjs" ServiceAccount ClusterRole ClusterRoleBinding Role RoleBinding |
  "${KUBECTL[@]}" apply --server-side --force-conflicts -o name -f -)
echo "$APPLIED" >&2
[[ ${1:-} == --rbac-only ]] && exit 0

SA=$(sed -n 's|^serviceaccount/||p' <<<"$APPLIED" | head -n 1)
[[ -n $SA ]] || { say "the chart rendered no ServiceAccount"; exit 1; }
TOKEN=$("${KUBECTL[@]}" -n "$NAMESPACE" create token "$SA" --duration=24h)
SERVER=$("${KUBECTL[@]}" config view --minify -o jsonpath='{.clusters[0].cluster.server}')
CA=$("${KUBECTL[@]}" config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
umask 077
cat >"$RUN/hahaha.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "$SERVER", certificate-authority-data: "$CA"}
users:
- name: $SA
  user: {token: "$TOKEN"}
contexts:
- name: hahaha
  context: {cluster: local, user: $SA, namespace: $NAMESPACE}
current-context: hahaha
KC

free_port() { "$NODE" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
PORT=$(free_port)
WEBHOOK=${HAHAHA_WEBHOOK:-on}
WEBHOOK_PORT=$(free_port)
WEBHOOK_URL=https://127.0.0.1:$WEBHOOK_PORT/mutate-v1-pod
CERTS=$RUN/webhook-certs
if [[ $WEBHOOK == on ]]; then
  # A serving certificate for 127.0.0.1, signed by the cluster's CA (the caBundle below).
  mkdir -p "$CERTS"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$CERTS/tls.key" 2>/dev/null
  openssl req -new -key "$CERTS/tls.key" -subj "/CN=hahaha-webhook" 2>/dev/null |
    openssl x509 -req -CA "$RUN/pki/ca.crt" -CAkey "$RUN/pki/ca.key" -CAcreateserial -days 30 \
      -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n') \
      -out "$CERTS/tls.crt" 2>/dev/null
fi
if [[ -f $RUN/pids/hahaha.pid ]] && kill -0 "$(cat "$RUN/pids/hahaha.pid")" 2>/dev/null; then
  kill -TERM "$(cat "$RUN/pids/hahaha.pid")"; sleep 1
fi
env "$MEMBER_ENV=$RUN" KUBECONFIG="$RUN/hahaha.kubeconfig" POD_NAMESPACE="$NAMESPACE" \
  INSTANCE_NAME="${INSTANCE_NAME:-hahaha-local}" METRICS_HOST=127.0.0.1 METRICS_PORT="$PORT" \
  LOG_LEVEL="${LOG_LEVEL:-debug}" \
  WEBHOOK_ENABLED="$([[ $WEBHOOK == on ]] && echo true || echo false)" WEBHOOK_HOST=127.0.0.1 \
  WEBHOOK_PORT="$WEBHOOK_PORT" WEBHOOK_CERT_DIR="$CERTS" \
  setsid "$NODE" "$HAHAHA_ROOT/bin/hahaha.js" run >>"$RUN/logs/hahaha.log" 2>&1 </dev/null &
PID=$!
echo "$PID" >"$RUN/pids/hahaha.pid"
printf 'HAHAHA_METRICS_URL=http://127.0.0.1:%s\nHAHAHA_PID=%s\nHAHAHA_WEBHOOK_URL=%s\n' "$PORT" "$PID" \
  "$([[ $WEBHOOK == on ]] && echo "$WEBHOOK_URL")" >"$RUN/hahaha.env"

for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then
    say "hahaha ready (pid $PID, metrics http://127.0.0.1:$PORT/metrics, log $RUN/logs/hahaha.log)"
    if [[ $WEBHOOK == on ]]; then
      curl -fsS --cacert "$RUN/pki/ca.crt" "https://127.0.0.1:$WEBHOOK_PORT/healthz" >/dev/null
      printf '%s\n' "$RENDERED" | "$NODE" "$HAHAHA_ROOT/scripts/local-webhook.mjs" "$WEBHOOK_URL" "$RUN/pki/ca.crt" |
        "${KUBECTL[@]}" apply --server-side --force-conflicts -f - >&2
      say "native sidecar webhook registered ($WEBHOOK_URL); HAHAHA_WEBHOOK=off to compare without it"
    else
      "${KUBECTL[@]}" delete mutatingwebhookconfiguration -l app.kubernetes.io/instance="$RELEASE" --ignore-not-found >&2
      say "native sidecar webhook off"
    fi
    exit 0
  fi
  kill -0 "$PID" 2>/dev/null || { say "hahaha exited; see $RUN/logs/hahaha.log"; tail -n 20 "$RUN/logs/hahaha.log" >&2; exit 1; }
  sleep 0.2
done
say "hahaha not ready after 20s; see $RUN/logs/hahaha.log"
exit 1

#!/usr/bin/env bash
# `npm run demo`: build what is missing, start the local cluster and hahaha, run a Naisjob-like
# CronJob whose pod has a linkerd-like and a fluentd-like sidecar, and show the Job completing,
# the pod's events and hahaha's metrics. Tears everything down at the end (DEMO_KEEP=1 keeps it).
set -Eeuo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RUN=${HAHAHA_CLUSTER_DIR:-$ROOT/.cluster}
k() { bash cluster/scripts/kubectl.sh "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() { [[ -n ${DEMO_KEEP:-} ]] || { step "tearing down"; bash cluster/scripts/down.sh; }; }
trap cleanup EXIT

step "starting the local cluster and hahaha (the first run builds Kubernetes from Go modules: about 10 minutes)"
KUBECONFIG_PATH=$(bash scripts/cluster-up.sh | tail -n 1)
echo "kubeconfig: $KUBECONFIG_PATH"
source "$RUN/hahaha.env"

step "a Naisjob-like CronJob with linkerd-proxy and secure-logs-fluentd sidecars"
k create namespace demo
k apply -f - <<'YAML'
apiVersion: batch/v1
kind: CronJob
metadata: {name: tiltak-okonomi-avstemming, namespace: demo, labels: {app: tiltak-okonomi-avstemming}}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        metadata:
          labels: {app: tiltak-okonomi-avstemming, nais.io/naisjob: "true"}
          annotations: {config.linkerd.io/proxy-admin-shutdown: enabled}
        spec:
          restartPolicy: Never
          containers:
          - name: tiltak-okonomi-avstemming
            image: example/tiltak-okonomi-avstemming:demo
            command: [sh, -c, 'echo reconciling accounts; sleep 3; echo done']
          - name: linkerd-proxy
            image: cr.l5d.io/linkerd/proxy:stable
            command: [fake-sidecar, linkerd]
          - name: secure-logs-fluentd
            image: fluentd:demo
            command: [fake-sidecar, fluentd]
YAML
step "triggering a run now (kubectl create job --from=cronjob/...)"
k -n demo create job --from=cronjob/tiltak-okonomi-avstemming run-now
T0=$SECONDS
for _ in $(seq 1 120); do
  line=$(k -n demo get pods -l batch.kubernetes.io/job-name=run-now --no-headers 2>/dev/null || true)
  [[ -n $line ]] && printf '  +%2ss  %s\n' $((SECONDS - T0)) "$line"
  if k -n demo get job run-now -o jsonpath='{.status.conditions[?(@.type=="Complete")].status}' | grep -q True; then
    break
  fi
  sleep 1
done
step "the Job"
k -n demo get job run-now
POD=$(k -n demo get pods -l batch.kubernetes.io/job-name=run-now -o jsonpath='{.items[0].metadata.name}')
step "kubectl describe pod $POD (events)"
k -n demo describe pod "$POD" | sed -n '/^Events:/,$p'
step "hahaha's metrics ($HAHAHA_METRICS_URL/metrics)"
curl -fsS "$HAHAHA_METRICS_URL/metrics" | grep -E '^hahaha_(sidecar_shutdowns|failed_sidecar_shutdowns|unsupported_sidecars|total_unsuccessful_event_posts|leader|sidecar_shutdown_latency_seconds_(sum|count))'

#!/usr/bin/env bash
# `npm run demo`: build what is missing, start the local cluster and hahaha, run a Naisjob-like
# CronJob whose pod has three sidecars: a linkerd-like proxy (reaped by hahaha), a fluentd-like
# logger and the real configmap-reload (both made native sidecars by hahaha's admission webhook),
# and show the Job completing, the pod's containers and events and hahaha's metrics. Tears
# everything down at the end (DEMO_KEEP=1 keeps it). HAHAHA_WEBHOOK=off runs it without the
# webhook: configmap-reload then exits 2 when stopped and the Job fails.
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
# shellcheck source=/dev/null # written by scripts/hahaha-up.sh at run time
source "$RUN/hahaha.env"

step "a Naisjob-like CronJob with linkerd-proxy, secure-logs-fluentd and secure-logs-configmap-reload sidecars"
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
          - name: secure-logs-configmap-reload
            image: ghcr.io/jimmidyson/configmap-reload:v0.12.0   # distroless: no shell, no killall
            command: [configmap-reload, --volume-dir=/config, --webhook-url=http://127.0.0.1:9999/-/reload, --web.listen-address=127.0.0.1:9533]
            volumeMounts: [{name: config, mountPath: /config}]
          volumes: [{name: config, emptyDir: {}}]
YAML
step "triggering a run now (kubectl create job --from=cronjob/...)"
k -n demo create job --from=cronjob/tiltak-okonomi-avstemming run-now
T0=$SECONDS
for _ in $(seq 1 120); do
  line=$(k -n demo get pods -l batch.kubernetes.io/job-name=run-now --no-headers 2>/dev/null || true)
  [[ -n $line ]] && printf '  +%2ss  %s\n' $((SECONDS - T0)) "$line"
  if k -n demo get job run-now -o jsonpath='{.status.conditions[?(@.status=="True")].type}' | grep -qE 'Complete|Failed'; then
    break
  fi
  sleep 1
done
step "the Job"
k -n demo get job run-now
POD=$(k -n demo get pods -l batch.kubernetes.io/job-name=run-now -o jsonpath='{.items[0].metadata.name}')
step "the pod's containers: the webhook made two sidecars native (init containers, restartPolicy Always)"
k -n demo get pod "$POD" -o go-template='{{range .spec.initContainers}}  initContainer {{.name}} restartPolicy={{.restartPolicy}}{{"\n"}}{{end}}{{range .spec.containers}}  container     {{.name}}{{"\n"}}{{end}}  annotation    hahaha.nais.io/native-sidecars={{index .metadata.annotations "hahaha.nais.io/native-sidecars"}}{{"\n"}}'
step "kubectl describe pod $POD (events)"
k -n demo describe pod "$POD" | sed -n '/^Events:/,$p'
step "hahaha's metrics ($HAHAHA_METRICS_URL/metrics)"
curl -fsS "$HAHAHA_METRICS_URL/metrics" | grep -E '^hahaha_(sidecar_shutdowns|failed_sidecar_shutdowns|unsupported_sidecars|total_unsuccessful_event_posts|leader|sidecar_shutdown_latency_seconds_(sum|count)|stopped_sidecar_exits_total|pods_failed_by_sidecars_total|native_sidecar_conversions_total|webhook_requests_total)'

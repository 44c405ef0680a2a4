#!/usr/bin/env bash
# Start a fresh local Kubernetes cluster on loopback:
#   etcd, kube-apiserver (TLS, Node+RBAC, service-account signing),
#   kube-controller-manager, kube-scheduler and one node (hahaha-node).
# Builds what is missing first (build.sh, build-tools.sh). Any cluster already
# running from the same run dir is stopped first; the run dir is wiped.
#
# Run dir: ${HAHAHA_CLUSTER_DIR:-<repo>/.cluster}
#   kubeconfig      admin kubeconfig (O=system:masters)
#   cluster.env     ports, URLs and binary paths (shell syntax)
#   logs/*.log      one log per component; pids/*.pid
#   pki/            CA, serving and client certificates, service-account key
#
# Progress goes to stderr; the last line of stdout is the kubeconfig path.
# UP_TIMEOUT (seconds, default 120) bounds each wait.
# HAHAHA_CLUSTER_AUDIT=1 (off by default) makes the API server write an audit log,
# logs/audit.log, of the requests of the users in HAHAHA_CLUSTER_AUDIT_USERS
# (comma-separated; default the chart's ServiceAccount hahaha-system/hahaha) at
# Metadata level, one line per stage after RequestReceived (bench/cluster.ts).
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T0=$SECONDS
TIMEOUT=${UP_TIMEOUT:-120}
NODE_NAME=hahaha-node

for tool in openssl curl setsid; do
  command -v "$tool" >/dev/null || { say "missing required tool: $tool"; exit 1; }
done

# ---------------------------------------------------------------- binaries
"$SCRIPTS/build.sh" k8s etcd >&2
eval "$("$SCRIPTS/build.sh" --print-env)"
TOOLS_BIN=$("$SCRIPTS/build-tools.sh" | tail -n 1)
[[ -x $TOOLS_BIN/hahaha-node ]] || { say "no hahaha-node in $TOOLS_BIN"; exit 1; }
KUBECTL=$K8S_BIN/kubectl

# ---------------------------------------------------------------- run dir
if [[ -d $RUN ]]; then
  "$SCRIPTS/down.sh"
  if [[ -n $(ls -A "$RUN") && ! -f $RUN/$RUN_MARK ]]; then
    say "$RUN exists and was not made by up.sh; refusing to wipe it"
    exit 1
  fi
  rm -rf "$RUN"
fi
mkdir -p "$RUN"/{pki,pids,logs,kubeconfigs,etcd,node}
touch "$RUN/$RUN_MARK"
chmod 700 "$RUN/pki" "$RUN/etcd"

on_error() {
  local rc=$1
  [[ $BASHPID == "$$" ]] || return 0   # only the script itself, not subshells
  say "cluster start failed (exit $rc); stopping what was started. Logs: $RUN/logs"
  "$SCRIPTS/down.sh" || true
  exit "$rc"
}
trap 'on_error $?' ERR
trap 'on_error 130' INT TERM

# ---------------------------------------------------------------- ports
# Free loopback TCP ports, chosen now: below the ephemeral range so that
# outgoing connections don't take them, and not listened on by anyone.
declare -A TAKEN=()
while read -r _ local _ state _; do
  [[ $state == 0A ]] && TAKEN[$((16#${local##*:}))]=1   # 0A = LISTEN
done < <(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -v local_address)
# free_port VAR: sets VAR to a port nobody listens on and not handed out yet.
free_port() {
  local p i
  for ((i = 0; i < 1000; i++)); do
    p=$((20000 + RANDOM % 12000))
    [[ -n ${TAKEN[$p]:-} ]] && continue
    TAKEN[$p]=1
    # nobody answers on it either
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
    printf -v "$1" '%s' "$p"
    return 0
  done
  say "no free port found"; return 1
}
free_port ETCD_PORT
free_port ETCD_PEER_PORT
free_port API_PORT
free_port KCM_PORT
free_port SCHED_PORT
free_port NODE_PORT
API_URL=https://127.0.0.1:$API_PORT

# ---------------------------------------------------------------- certificates
PKI=$RUN/pki
say "making certificates in $PKI"
(
  cd "$PKI"
  newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
  newkey ca
  openssl req -x509 -new -key ca.key -days 3650 -subj "/CN=hahaha-local-ca" -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  # cert NAME SUBJECT USAGE [SAN]
  cert() {
    newkey "$1"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
    {
      echo "basicConstraints=critical,CA:FALSE"
      echo "keyUsage=critical,digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=$3"
      [[ -z ${4:-} ]] || echo "subjectAltName=$4"
    } >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
      -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
  }
  local_sans="IP:127.0.0.1,DNS:localhost"
  cert apiserver "/CN=kube-apiserver" serverAuth \
    "$local_sans,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" clientAuth
  cert admin "/O=system:masters/CN=hahaha-admin" clientAuth
  cert controller-manager "/CN=system:kube-controller-manager" clientAuth
  cert scheduler "/CN=system:kube-scheduler" clientAuth
  cert node-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  cert node-serving "/CN=$NODE_NAME" serverAuth "$local_sans,DNS:$NODE_NAME"
  # front proxy (aggregation layer): its own CA, as kubeadm does
  newkey front-proxy-ca
  openssl req -x509 -new -key front-proxy-ca.key -days 3650 -subj "/CN=hahaha-front-proxy-ca" -out front-proxy-ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  newkey front-proxy-client
  openssl req -new -key front-proxy-client.key -subj "/CN=front-proxy-client" 2>/dev/null |
    openssl x509 -req -CA front-proxy-ca.crt -CAkey front-proxy-ca.key -CAcreateserial -days 825 \
      -extfile <(printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n') \
      -out front-proxy-client.crt 2>/dev/null
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
  openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
  rm -f ca.srl front-proxy-ca.srl
)

# kubeconfig FILE CERT USER: a self-contained kubeconfig (data embedded).
kubeconfig() {
  local b64='base64 -w0'
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: hahaha
  cluster:
    server: $API_URL
    certificate-authority-data: $($b64 <"$PKI/ca.crt")
users:
- name: $3
  user:
    client-certificate-data: $($b64 <"$PKI/$2.crt")
    client-key-data: $($b64 <"$PKI/$2.key")
contexts:
- name: hahaha
  context:
    cluster: hahaha
    user: $3
    namespace: default
current-context: hahaha
EOF
  chmod 600 "$1"
}
KUBECONFIG_ADMIN=$RUN/kubeconfig
kubeconfig "$KUBECONFIG_ADMIN" admin hahaha-admin
kubeconfig "$RUN/kubeconfigs/controller-manager" controller-manager system:kube-controller-manager
kubeconfig "$RUN/kubeconfigs/scheduler" scheduler system:kube-scheduler
kubeconfig "$RUN/kubeconfigs/node" node-client "system:node:$NODE_NAME"

# ---------------------------------------------------------------- helpers
# start NAME CMD...: runs CMD in its own session, detached from this shell,
# logging to logs/NAME.log, with the cluster marker in its environment.
start() {
  local name=$1; shift
  (
    cd "$RUN"
    export "$MEMBER_ENV=$RUN"
    exec setsid "$@" >"$RUN/logs/$name.log" 2>&1 </dev/null
  ) &
  echo $! >"$RUN/pids/$name.pid"
}

# wait_for WHAT CMD...: retries CMD until it succeeds or TIMEOUT passes;
# fails with the tail of the logs of the components that died.
wait_for() {
  local what=$1; shift
  local deadline=$((SECONDS + TIMEOUT)) f pid
  until "$@" >/dev/null 2>&1; do
    for f in "$RUN"/pids/*.pid; do
      pid=$(cat "$f")
      if [[ ! -d /proc/$pid ]] || [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]]; then
        local name; name=$(basename "$f" .pid)
        say "$name exited while waiting for $what; last lines of logs/$name.log:"
        tail -n 30 "$RUN/logs/$name.log" >&2 || true
        return 1
      fi
    done
    if ((SECONDS >= deadline)); then
      say "timed out after ${TIMEOUT}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
  say "$what ($((SECONDS - T0))s)"
}

kubectl_admin() { "$KUBECTL" --kubeconfig "$KUBECONFIG_ADMIN" --request-timeout=5s "$@"; }

# ---------------------------------------------------------------- etcd
say "starting etcd on 127.0.0.1:$ETCD_PORT"
start etcd "$ETCD_BIN/etcd" \
  --name hahaha --data-dir "$RUN/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "hahaha=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync --log-level warn
wait_for "etcd healthy" curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

# ---------------------------------------------------------------- kube-apiserver
AUDIT_ARGS=()
if [[ ${HAHAHA_CLUSTER_AUDIT:-} == 1 ]]; then
  AUDIT_USERS=${HAHAHA_CLUSTER_AUDIT_USERS:-system:serviceaccount:hahaha-system:hahaha}
  {
    echo "apiVersion: audit.k8s.io/v1"
    echo "kind: Policy"
    echo "omitStages: [RequestReceived]"
    echo "rules:"
    echo "  - level: Metadata"
    echo "    users: [\"${AUDIT_USERS//,/\", \"}\"]"
    echo "  - level: None"
  } >"$RUN/audit-policy.yaml"
  AUDIT_ARGS=(--audit-policy-file "$RUN/audit-policy.yaml" --audit-log-path "$RUN/logs/audit.log")
  say "audit log of ${AUDIT_USERS} in $RUN/logs/audit.log"
fi
say "starting kube-apiserver on $API_URL"
start kube-apiserver "$K8S_BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" \
  --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" \
  --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User \
  --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$PKI/front-proxy-client.crt" \
  --proxy-client-key-file "$PKI/front-proxy-client.key" \
  --authorization-mode Node,RBAC \
  --enable-admission-plugins NodeRestriction \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$PKI/sa.pub" \
  --service-account-signing-key-file "$PKI/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 \
  --endpoint-reconciler-type none \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" \
  --kubelet-preferred-address-types InternalIP \
  --allow-privileged=true \
  --profiling=false \
  "${AUDIT_ARGS[@]}" \
  --v=1
wait_for "kube-apiserver ready" curl -fsS --cacert "$PKI/ca.crt" \
  --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$API_URL/readyz"

# ---------------------------------------------------------------- controllers, scheduler, node
say "starting kube-controller-manager, kube-scheduler and $NODE_NAME"
start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig "$RUN/kubeconfigs/controller-manager" \
  --authentication-kubeconfig "$RUN/kubeconfigs/controller-manager" \
  --authorization-kubeconfig "$RUN/kubeconfigs/controller-manager" \
  --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
  --controllers "${KCM_CONTROLLERS:-job-controller,cronjob-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,ttl-after-finished-controller,pod-garbage-collector-controller,deployment-controller,replicaset-controller,node-lifecycle-controller,taint-eviction-controller}" \
  --use-service-account-credentials \
  --service-account-private-key-file "$PKI/sa.key" \
  --root-ca-file "$PKI/ca.crt" \
  --leader-elect=false \
  --v=1
start kube-scheduler "$K8S_BIN/kube-scheduler" \
  --kubeconfig "$RUN/kubeconfigs/scheduler" \
  --authentication-kubeconfig "$RUN/kubeconfigs/scheduler" \
  --authorization-kubeconfig "$RUN/kubeconfigs/scheduler" \
  --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" \
  --leader-elect=false \
  --v=1
start node "$TOOLS_BIN/hahaha-node" \
  --kubeconfig "$RUN/kubeconfigs/node" \
  --node-name "$NODE_NAME" \
  --listen "127.0.0.1:$NODE_PORT" \
  --tls-cert "$PKI/node-serving.crt" --tls-key "$PKI/node-serving.key" \
  --client-ca "$PKI/ca.crt" \
  --state-dir "$RUN/node" \
  --path-prepend "$TOOLS_BIN"

cat >"$RUN/cluster.env" <<EOF
# written by cluster/scripts/up.sh
KUBECONFIG=$KUBECONFIG_ADMIN
API_URL=$API_URL
CA_FILE=$PKI/ca.crt
K8S_BIN=$K8S_BIN
ETCD_BIN=$ETCD_BIN
TOOLS_BIN=$TOOLS_BIN
ETCD_URL=http://127.0.0.1:$ETCD_PORT
NODE_NAME=$NODE_NAME
NODE_ADDRESS=127.0.0.1:$NODE_PORT
KUBE_CONTROLLER_MANAGER_PORT=$KCM_PORT
KUBE_SCHEDULER_PORT=$SCHED_PORT
EOF

node_ready() {
  [[ $(kubectl_admin get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}') == True ]]
}
wait_for "node $NODE_NAME Ready" node_ready
# the node lifecycle controller lifts the not-ready taint that admission put
# on the new Node; until then nothing schedules
node_untainted() {
  ! kubectl_admin get node "$NODE_NAME" -o 'jsonpath={.spec.taints[*].key}' | grep -q 'node.kubernetes.io/not-ready'
}
wait_for "node $NODE_NAME schedulable" node_untainted
wait_for "kube-controller-manager healthy" curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"
wait_for "kube-scheduler healthy" curl -fsSk "https://127.0.0.1:$SCHED_PORT/healthz"
wait_for "ServiceAccount default/default" kubectl_admin get serviceaccount default -n default
wait_for "ConfigMap default/kube-root-ca.crt" kubectl_admin get configmap kube-root-ca.crt -n default

trap - ERR
touch "$RUN/kubeconfig.ready"
say "cluster up in $((SECONDS - T0))s: $API_URL; kubectl: cluster/scripts/kubectl.sh; stop: cluster/scripts/down.sh"
echo "$KUBECONFIG_ADMIN"

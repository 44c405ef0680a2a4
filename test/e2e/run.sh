#!/usr/bin/env bash
# The end-to-end suite: builds what is missing (cold: about 10 minutes, cached after), starts the
# local cluster and a hahaha instance with the chart's RBAC, runs test/e2e/*.test.ts, and always
# tears the cluster down. On failure it prints the tail of hahaha's and the node's logs, then each
# failed test with its error (last, where a CI summary of the output's end shows it).
#   E2E_KEEP_CLUSTER=1   leave the cluster running afterwards (stop it with npm run cluster:down)
#   E2E_TESTS="a.test.ts b.test.ts"  run only these files (relative to test/e2e)
set -Eeuo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
RUN=${HAHAHA_CLUSTER_DIR:-$ROOT/.cluster}
T0=$SECONDS

teardown() {
  local rc=$?
  if [[ $rc -ne 0 && -d $RUN/logs ]]; then
    for log in hahaha node kube-controller-manager; do
      [[ -f $RUN/logs/$log.log ]] || continue
      echo "---- last lines of $RUN/logs/$log.log" >&2
      tail -n 40 "$RUN/logs/$log.log" >&2
    done
    if [[ -f $RUN/logs/hahaha.log ]]; then
      echo "---- hahaha's leadership and its warnings (level 40+), by message" >&2
      grep -E '"msg":"(became leader|stopped leading)' "$RUN/logs/hahaha.log" | grep -oE '"time":"[^"]*"|"msg":"[^"]*"' | paste -d' ' - - | tail -n 8 >&2 || true
      grep -E '"level":(40|50|60)' "$RUN/logs/hahaha.log" | grep -oE '"msg":"[^"]{0,120}' | sort | uniq -c | sort -rn | head -n 12 >&2 || true
    fi
  fi
  if [[ -z ${E2E_KEEP_CLUSTER:-} ]]; then bash cluster/scripts/down.sh >&2 || true; fi
  if [[ $rc -ne 0 && -s $RUN/logs/e2e-failures.log ]]; then
    echo "---- failed tests" >&2
    cat "$RUN/logs/e2e-failures.log" >&2
  fi
  echo "e2e: finished in $((SECONDS - T0)) s (exit $rc)" >&2
  exit $rc
}
trap teardown EXIT

bash scripts/cluster-up.sh >/dev/null
rm -f "$RUN/logs/e2e-failures.log"
# spec to the output; the failed tests, with their errors, to a file printed again at the end
reporters=(--test-reporter=spec --test-reporter-destination=stdout
  --test-reporter=./test/e2e/failure-reporter.mjs --test-reporter-destination="$RUN/logs/e2e-failures.log")
echo "e2e: cluster and hahaha up after $((SECONDS - T0)) s" >&2

# test/e2e/*.test.ts run in parallel; test/e2e/serial/ ones one at a time afterwards (they take
# the cluster down in part, e.g. the API server).
files=() serial=()
if [[ -n ${E2E_TESTS:-} ]]; then
  for f in $E2E_TESTS; do
    if [[ $f == serial/* ]]; then serial+=("test/e2e/$f"); else files+=("test/e2e/$f"); fi
  done
else
  files=(test/e2e/*.test.ts)
  serial=(test/e2e/serial/*.test.ts)
fi
if ((${#files[@]} > 0)); then
  node --test --test-concurrency=4 --test-timeout=600000 "${reporters[@]}" "${files[@]}"
fi
if ((${#serial[@]} > 0)); then
  node --test --test-concurrency=1 --test-timeout=600000 "${reporters[@]}" "${serial[@]}"
fi

# The cluster's hahaha must stop on SIGTERM within its shutdown grace (SHUTDOWN_GRACE_SECONDS, 20 s,
# for reaps in flight) and its servers' close (1 s each), and say so: a connection the API server
# kept to the webhook once held it until the teardown's SIGKILL.
pid=$(cat "$RUN/pids/hahaha.pid")
kill -TERM "$pid"
for ((i = 0; i < 250; i++)); do
  read -r stat 2>/dev/null <"/proc/$pid/stat" || break
  stat=${stat##*) }
  [[ ${stat:0:1} == Z ]] && break
  sleep 0.1
done
if ((i == 250)); then
  echo "e2e: hahaha (pid $pid) still running 25 s after SIGTERM" >&2
  exit 1
fi
if ! tail -n 5 "$RUN/logs/hahaha.log" | grep -q '"msg":"stopped"'; then
  echo "e2e: hahaha exited on SIGTERM without its last log line, \"stopped\"" >&2
  exit 1
fi
echo "e2e: hahaha stopped $((i / 10)).$((i % 10)) s after SIGTERM" >&2

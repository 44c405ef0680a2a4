#!/usr/bin/env bash
# Quality gate for the chart's alert rules with Prometheus' own promtool:
#   promtool check rules --lint=all --lint-fatal charts/hahaha/rules/hahaha.yaml
#   promtool test rules charts/hahaha/rules/tests/*.yaml   (every alert: fires / does not fire)
# promtool is built from the Go module proxy by `cluster/scripts/build.sh promtool` and cached
# under ${XDG_CACHE_HOME:-$HOME/.cache}/hahaha/promtool-<version>/ (a cold build takes minutes).
# PROMTOOL=/path/to/promtool uses that one instead. Part of `npm run check`; takes no arguments.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [[ -z ${PROMTOOL:-} ]]; then
  bash cluster/scripts/build.sh promtool
  PROMTOOL=$(bash cluster/scripts/build.sh --print-env | sed -n 's/^PROMTOOL_BIN=//p')/promtool
fi
[[ -x $PROMTOOL ]] || { echo "check-rules: $PROMTOOL is not an executable" >&2; exit 1; }

RULES=charts/hahaha/rules/hahaha.yaml
shopt -s nullglob
tests=(charts/hahaha/rules/tests/*.yaml)
((${#tests[@]} > 0)) || { echo "check-rules: no unit tests in charts/hahaha/rules/tests/" >&2; exit 1; }

echo "check-rules: $("$PROMTOOL" --version 2>&1 | head -n 1)" >&2
"$PROMTOOL" check rules --lint=all --lint-fatal "$RULES"
"$PROMTOOL" test rules "${tests[@]}"

# every alert of the rules file has a test that expects it to fire
missing=()
while read -r alert; do
  grep -qE "alertname: $alert\$" "${tests[@]}" && grep -A3 -E "alertname: $alert\$" "${tests[@]}" | grep -q 'exp_labels' \
    || missing+=("$alert")
done < <(sed -n 's/^[[:space:]]*- alert:[[:space:]]*\([A-Za-z0-9_]*\).*/\1/p' "$RULES")
if ((${#missing[@]} > 0)); then
  echo "check-rules: no test expects these alerts to fire: ${missing[*]}" >&2
  exit 1
fi
echo "check-rules: $RULES lint-clean, ${#tests[@]} test file(s) pass, every alert tested" >&2

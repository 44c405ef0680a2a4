#!/usr/bin/env bash
# Quality gate: shellcheck over every shell script of the repository (*.sh and the
# extensionless scripts with a sh/bash shebang, such as .ci/run), following `source`
# (-x, paths relative to each script: -P SCRIPTDIR, or a `# shellcheck source=` directive).
# Severity info and up fails the gate; style hints are not checked. A finding that is
# deliberate gets a `# shellcheck disable=SCnnnn # why` on the line above it.
# Part of `npm run check`; takes no arguments. .ci/run installs shellcheck when missing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

command -v shellcheck >/dev/null || {
  echo "check-shell: shellcheck is not installed (apt-get install shellcheck; .ci/run does that)" >&2
  exit 1
}

# The tracked files (a checkout), else every file outside node_modules.
list_files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard
  else
    find . -path ./node_modules -prune -o -path ./.git -prune -o -type f -print0 | sed -z 's#^\./##'
  fi
}
scripts=()
while IFS= read -r -d '' f; do
  [[ -f $f ]] || continue
  case $f in
    node_modules/* | */node_modules/*) continue ;;
    *.sh | *.bash) scripts+=("$f") ;;
    *.*) ;;
    *) head -n 1 "$f" 2>/dev/null | grep -qE '^#!.*[/ ](ba)?sh( |$)' && scripts+=("$f") ;;
  esac
done < <(list_files)
((${#scripts[@]} > 0)) || { echo "check-shell: found no shell scripts" >&2; exit 1; }

echo "check-shell: $(shellcheck --version | sed -n 's/^version: //p'), ${#scripts[@]} scripts" >&2
if shellcheck --external-sources --source-path=SCRIPTDIR --severity=info --format=gcc "${scripts[@]}"; then
  echo "check-shell: ${#scripts[@]} scripts, no findings" >&2
else
  echo "check-shell: FAILED (see the findings above; https://www.shellcheck.net/wiki/SCnnnn explains each)" >&2
  exit 1
fi

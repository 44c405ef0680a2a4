#!/usr/bin/env bash
# Stop the local cluster started by up.sh: the node first (it stops its pods),
# then the scheduler, controller-manager, API server and etcd. Works after a
# crash too: besides the pidfiles it sweeps every process that carries the
# run dir's marker in its environment, names the run dir in its command line,
# or runs in it, and unmounts anything mounted below it. Idempotent.
# Logs and certificates stay in the run dir for inspection.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -d $RUN ]] || exit 0

# pids of this script and its ancestors are never touched
declare -A SPARE=()
p=$$
while [[ -n $p && $p -gt 1 ]]; do
  SPARE[$p]=1
  read -r st 2>/dev/null <"/proc/$p/stat" || break
  st=${st##*) }
  read -r -a f <<<"$st"
  p=${f[1]}
done

alive() {
  local stat
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# belongs PID: the process is part of this cluster. Reads /proc with bash
# builtins only, so that a sweep over all processes stays fast.
belongs() {
  local pid=$1 x
  [[ -z ${SPARE[$pid]:-} && $pid != "$BASHPID" ]] || return 1
  local -a env=() cmd=()
  # the marker up.sh puts in the environment of what it starts
  mapfile -d '' env 2>/dev/null <"/proc/$pid/environ" || true
  for x in "${env[@]}"; do [[ $x == "$MEMBER_ENV=$RUN" ]] && return 0; done
  # the run dir named in the command line (as an argument, or after = or :)
  mapfile -d '' cmd 2>/dev/null <"/proc/$pid/cmdline" || true
  for x in "${cmd[@]}"; do
    case $x in
      "$RUN" | "$RUN"/* | *[=:]"$RUN" | *[=:]"$RUN"/*) return 0 ;;
    esac
  done
  [[ ${#cmd[@]} -gt 0 ]] || return 1   # kernel threads have no command line
  # running inside the run dir (e.g. a container's work dir), but only
  # without a terminal: a person's shell that cd'ed into it is left alone
  local cwd stat f
  cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
  if [[ $cwd == "$RUN" || $cwd == "$RUN"/* ]]; then
    read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
    stat=${stat##*) }          # fields after "(comm) "
    read -r -a f <<<"$stat"    # f[0]=state f[1]=ppid f[2]=pgrp f[3]=session f[4]=tty_nr
    [[ ${f[4]:-1} == 0 ]] && return 0
  fi
  return 1
}

sweep() {
  local d pid
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    belongs "$pid" && alive "$pid" && echo "$pid"
  done
  return 0
}

# stop PIDS...: SIGTERM, wait up to $GRACE seconds, SIGKILL the rest.
stop() {
  local pids=("$@") left pid i
  [[ ${#pids[@]} -gt 0 ]] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for ((i = 0; i < GRACE * 10; i++)); do
    left=()
    for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
    [[ ${#left[@]} -eq 0 ]] && return 0
    sleep 0.1
  done
  say "still running after ${GRACE}s, sending SIGKILL: ${left[*]}"
  kill -KILL "${left[@]}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    left=()
    for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
    [[ ${#left[@]} -eq 0 ]] && return 0
    sleep 0.1
  done
}

stopped_any=0
# 1. the components in order, by pidfile (only if the pid is still ours)
# hahaha first: it releases its lease while the API server is still there.
for name in hahaha node kube-scheduler kube-controller-manager kube-apiserver etcd; do
  pidfile=$RUN/pids/$name.pid
  [[ -f $pidfile ]] || continue
  pid=$(cat "$pidfile")
  if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && belongs "$pid"; then
    say "stopping $name (pid $pid)"
    GRACE=$([[ $name == node ]] && echo 12 || echo 8) stop "$pid"
    stopped_any=1
  fi
  rm -f "$pidfile"
done

# 2. anything else of this cluster (a crashed node's containers, strays)
for _ in 1 2 3; do
  mapfile -t rest < <(sweep)
  [[ ${#rest[@]} -eq 0 ]] && break
  say "stopping leftover processes of $RUN: ${rest[*]}"
  GRACE=3 stop "${rest[@]}"
  stopped_any=1
done

# 3. mounts below the run dir, deepest first
mapfile -t mounts < <(awk '{print $5}' /proc/self/mountinfo | while read -r m; do
  m=$(printf '%b' "$m")   # mountinfo escapes spaces as \040
  [[ $m == "$RUN" || $m == "$RUN"/* ]] && echo "$m"
done | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-)
for m in "${mounts[@]}"; do
  say "unmounting $m"
  umount "$m" 2>/dev/null || umount -l "$m" || true
done

mapfile -t rest < <(sweep)
if [[ ${#rest[@]} -gt 0 ]]; then
  say "ERROR: processes of $RUN survive: ${rest[*]}"
  exit 1
fi
rm -f "$RUN/kubeconfig.ready"
[[ $stopped_any == 1 ]] && say "cluster in $RUN stopped"
exit 0

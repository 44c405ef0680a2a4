# Shared by up.sh, down.sh and kubectl.sh; source it, don't run it.
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables below are used by the scripts that source this file

HAHAHA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCRIPTS=$HAHAHA_ROOT/cluster/scripts

# The run dir holds everything of one running cluster: pids, logs, certs,
# kubeconfigs, etcd data and the node's state.
RUN=${HAHAHA_CLUSTER_DIR:-$HAHAHA_ROOT/.cluster}
case $RUN in /*) ;; *) RUN=$PWD/$RUN ;; esac
RUN=${RUN%/}
# A file that marks a directory as ours, so that up.sh only ever wipes a
# directory it created.
RUN_MARK=.hahaha-cluster-run-dir
# Every process up.sh starts carries this in its environment; down.sh uses it
# (with the run dir path in a command line or cwd) to find leftovers.
MEMBER_ENV=HAHAHA_CLUSTER_MEMBER

say() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

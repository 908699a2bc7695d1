#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs a command with LD_PRELOAD=<override library> and HAKMEM_SHOW_STATS=1. Passes when the command exits 0
# and hakmem printed its statistics at exit (which proves the preload took effect and that the statistics
# destructor works under the preload).
# usage: run_preloaded.sh <libhakmem_override.so> <command> [args...]
set -u
lib=$1
shift
[[ -f $lib ]] || { echo "run_preloaded: no such library: $lib"; exit 1; }
err=$(mktemp)
trap 'rm -f "$err"' EXIT
LD_PRELOAD=$lib HAKMEM_SHOW_STATS=1 "$@" 2>"$err"
rc=$?
# The statistics of every process (children too) are in there; show the first report and any other lines.
awk '/^hakmem stats/ { n++ } n <= 1 || !/^(hakmem stats|  )/' "$err" >&2
if ((rc != 0)); then
    echo "run_preloaded: '$*' exited with status $rc"
    exit 1
fi
if ! grep -q '^hakmem stats' "$err"; then
    echo "run_preloaded: no hakmem statistics at exit: the preload did not take effect or HAKMEM_SHOW_STATS failed"
    exit 1
fi
exit 0

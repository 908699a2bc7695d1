#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs a command and checks how it ended: expect_report.sh <status> [-e <pattern>]... -- <command> [args...]
#   status      the exit status it must have: a number, or "nonzero" (an ASan abort)
#   -e pattern  an extended regular expression some line of its output (stdout and stderr) must match
# Prints the output, then what was found; exit 0 if everything holds, 1 otherwise.
set -uo pipefail
want=$1
shift
patterns=()
while (($#)) && [[ $1 != -- ]]; do
    [[ $1 == -e && $# -ge 2 ]] || { echo "usage: $0 <status> [-e <pattern>]... -- <command>" >&2; exit 2; }
    patterns+=("$2")
    shift 2
done
shift
out=$("$@" 2>&1)
status=$?
printf '%s\n' "$out"
ok=1
if [[ $want == nonzero ]] && ((status == 0)) || [[ $want != nonzero ]] && ((status != want)); then
    ok=0
fi
echo "expect_report: exit status $status (expected $want)"
for p in "${patterns[@]}"; do
    if grep -Eq -- "$p" <<<"$out"; then
        echo "expect_report: found '$p'"
    else
        echo "expect_report: MISSING '$p'"
        ok=0
    fi
done
((ok)) && exit 0
echo "expect_report: FAILED" >&2
exit 1

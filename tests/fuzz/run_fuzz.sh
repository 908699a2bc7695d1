#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The ctest fuzz_api: runs every file of regressions/ once, then fuzzes for <seconds> from a fresh copy of the
# seed corpus (0 seconds: runs the corpus once instead). Fails if the fuzzer finds anything; the input that
# failed is left in <work>/artifacts/.
# Usage: run_fuzz.sh <fuzz_api executable> <tests/fuzz source dir> <work dir> <seconds>
set -euo pipefail

fuzzer=$1 src=$2 work=$3 seconds=$4

rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp "$src"/corpus/* "$work/corpus/"
common=(-rss_limit_mb=2048 -timeout=10 -artifact_prefix="$work/artifacts/")

fail() {
    echo "run_fuzz: $1 failed (the input that failed is named above; crash inputs are in $work/artifacts/)" >&2
    ls -l "$work/artifacts/" >&2
    exit 1
}

regressions=()
for f in "$src"/regressions/*; do
    [[ -f $f && $f != *.md ]] && regressions+=("$f")
done
if ((${#regressions[@]})); then
    echo "run_fuzz: ${#regressions[@]} regression input(s)"
    "$fuzzer" "${common[@]}" "${regressions[@]}" || fail "a regression input"
fi

if ((seconds > 0)); then
    echo "run_fuzz: fuzzing for $seconds s from $(ls "$work/corpus" | wc -l) seed inputs"
    "$fuzzer" "${common[@]}" -max_len=4096 -max_total_time="$seconds" -print_final_stats=1 "$work/corpus" ||
        fail "fuzzing"
else
    echo "run_fuzz: running the seed corpus once"
    "$fuzzer" "${common[@]}" "$work"/corpus/* || fail "seed corpus"
fi
echo "run_fuzz: nothing found"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the security tests against another hakmem tree (its public headers, libhakmem.a and
# libhakmem_override.so: for instance a tree from before the hardening) and runs them, printing for every test
# whether it passed and, if not, the first thing that went wrong. A security test must fail there: the attack
# worked (BAD ...: malloc returned the attacker's address, a block was handed out twice...), crashed, hung,
# or went unreported. Not registered with ctest: the tree to compare with is not part of this one.
#
# usage: run_old_tree.sh <include dir> <libhakmem.a> <libhakmem_override.so> [<scratch dir>]
#   e.g. run_old_tree.sh /work/base/include /work/base/build/release/libhakmem.a \
#                        /work/base/build/release/libhakmem_override.so
# Environment: CC (default cc). The tests are compiled with -DHAKMEM_CHECKS=1 (the other tree has no such
# option: nothing is skipped) and the known-bug tests are run too (--known-bugs).
set -u
if (($# < 3)); then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
inc=$(realpath "$1") && lib=$(realpath "$2") && so=$(realpath "$3") || exit 2
out=$(realpath -m "${4:-$(mktemp -d)}")
here=$(cd "$(dirname "$0")" && pwd)
tests_dir=$(dirname "$here")
cc=${CC:-cc}
mkdir -p "$out" || exit 1
cmocka_flags=$(pkg-config --cflags --libs cmocka 2>/dev/null || echo -lcmocka)
flags=(-std=gnu11 -O2 -g -D_GNU_SOURCE -DHAKMEM_CHECKS=1 -I"$inc" -I"$tests_dir")

build() { # <name> <extra args...>
    local name=$1
    shift
    # shellcheck disable=SC2086 # cmocka_flags is a list of flags
    if ! "$cc" "${flags[@]}" "$here/test_$name.c" "$@" $cmocka_flags -lpthread -ldl -o "$out/test_$name" \
        2>"$out/build_$name.log"; then
        echo "$name: does not build against $inc (see $out/build_$name.log)"
        return 1
    fi
}

report() { # <name> <log>: one line per test
    awk -v prog="$1" '
        /^\[ RUN      \]/ { t = $NF; msg = "" }
        /^ERROR: / && msg == "" { msg = substr($0, 8) }
        /^\[       OK \]/ { printf "%-22s %-48s passed\n", prog, $NF }
        /^\[  FAILED  \] test_/ && t == $NF { printf "%-22s %-48s FAILED: %s\n", prog, $NF, msg; t = "" }
        /^\[  SKIPPED \]/ { printf "%-22s %-48s skipped\n", prog, $NF }
    ' "$2"
}

for src in "$here"/test_*.c; do
    name=$(basename "$src" .c)
    name=${name#test_}
    if [[ $name == override ]]; then
        build "$name" -DSEC_OVERRIDE_LIB="\"$so\"" -fno-builtin-malloc -fno-builtin-free || continue
    else
        build "$name" "$lib" || continue
    fi
    for mode in "" --known-bugs; do
        log=$out/run_$name${mode:+_known}.log
        (cd "$out" && env -u HAKMEM_ON_ERROR -u LD_PRELOAD timeout 600 "./test_$name" $mode >"$log" 2>&1)
        report "$name" "$log"
    done
done
echo "(logs in $out)"

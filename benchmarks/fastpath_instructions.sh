#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Instructions per malloc+free pair (16..511 B) under each allocator, counted with callgrind (repeatable,
# unlike timings on a shared machine). Usage: fastpath_instructions.sh <build-dir>
set -euo pipefail
build=${1:?usage: $0 <build-dir>}
prog=$build/benchmarks/fastpath_pair
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
lib=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
count() { # <preload or empty> <ops>
    local out
    out=$(LD_PRELOAD=$1 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$prog" --ops "$2" 2>&1)
    sed -n 's/.*refs: *//p' <<<"$out" | tr -d ,
}
printf '| allocator | instructions per pair (incl. ~8 of loop) |\n|---|---:|\n'
for entry in "glibc:" "hakmem:$build/libhakmem_override.so" "mimalloc:$(ls "$lib"/libmimalloc.so* 2>/dev/null | head -n 1)" \
             "jemalloc:$lib/libjemalloc.so.2" "tcmalloc:$lib/libtcmalloc_minimal.so.4"; do
    name=${entry%%:*}
    so=${entry#*:}
    [[ $name == glibc || -e $so ]] || continue
    a=$(count "$so" 100000)
    b=$(count "$so" 200000)
    printf '| %s | %d |\n' "$name" $(((b - a) / 100000))
done

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Instructions per malloc+free pair (16..511 B) under each allocator, counted with callgrind (repeatable,
# unlike timings on a shared machine). Each count is the difference between runs of 100,000 and 200,000
# iterations, free of start-up costs; "beyond null" subtracts the same loop against a null allocator
# (fastpath_pair_null: malloc returns a static buffer, free returns), which leaves the allocator's own
# malloc+free. Usage: fastpath_instructions.sh <build-dir>
set -euo pipefail
build=${1:?usage: $0 <build-dir>}
prog=$build/benchmarks/fastpath_pair
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
lib=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
count() { # <program> <preload or empty> <ops>
    local out
    out=$(LD_PRELOAD=$2 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" --ops "$3" 2>&1)
    sed -n 's/.*refs: *//p' <<<"$out" | tr -d ,
}
per_iteration() { # <program> <preload or empty>
    local a b
    a=$(count "$1" "$2" 100000)
    b=$(count "$1" "$2" 200000)
    echo $(((b - a) / 100000))
}
null=$(per_iteration "${prog}_null" "")
printf 'null allocator (the loop and two calls through the PLT): %d instructions per iteration\n\n' "$null"
printf '| allocator | per iteration | beyond null |\n|---|---:|---:|\n'
for entry in "glibc:" "hakmem:$build/libhakmem_override.so" "mimalloc:$(ls "$lib"/libmimalloc.so* 2>/dev/null | head -n 1)" \
             "jemalloc:$lib/libjemalloc.so.2" "tcmalloc:$lib/libtcmalloc_minimal.so.4"; do
    name=${entry%%:*}
    so=${entry#*:}
    [[ $name == glibc || -e $so ]] || continue
    n=$(per_iteration "$prog" "$so")
    printf '| %s | %d | %d |\n' "$name" "$n" $((n - null))
done

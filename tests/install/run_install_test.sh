#!/usr/bin/env bash
# Install test: install the built tree into a scratch prefix, then build and run a consumer project against it
# twice, through find_package(hakmem CONFIG) (shared and static targets) and through pkg-config.
# Usage: run_install_test.sh <build-dir> <config> <libdir> <work-dir> <c-compiler> [<extra C flags>]
set -euo pipefail

if [[ $# -lt 5 ]]; then
    echo "usage: $0 <build-dir> <config> <libdir> <work-dir> <c-compiler> [<extra-cflags>]" >&2
    exit 2
fi
build_dir=$1
config=$2
libdir=$3
work=$4
cc=$5
extra_cflags=${6:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
consumer_src=$here/consumer

step() { printf '\n=== install test: %s\n' "$*"; }
fail() { printf 'install test FAILED: %s\n' "$*" >&2; exit 1; }
trap 'echo "install test FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix

step "cmake --install $build_dir --prefix $prefix"
cmake --install "$build_dir" --prefix "$prefix" --config "$config"

libpath=$prefix/$libdir
for f in include/hakmem/hakmem.h "$libdir/libhakmem.so" "$libdir/libhakmem.so.0" "$libdir/libhakmem.a" \
         "$libdir/cmake/hakmem/hakmemConfig.cmake" "$libdir/cmake/hakmem/hakmemConfigVersion.cmake" \
         "$libdir/cmake/hakmem/hakmemTargets.cmake" "$libdir/pkgconfig/hakmem.pc"; do
    [[ -e $prefix/$f ]] || fail "missing installed file $f"
done
# The reference: hakmem(3) under the man directory (share/man/man3 unless configured otherwise) and API.md.
[[ -n $(find "$prefix" -path '*/man3/hakmem.3') ]] || fail "missing installed man page man3/hakmem.3"
[[ -n $(find "$prefix" -path '*/doc/hakmem/API.md') ]] || fail "missing installed doc/hakmem/API.md"

step "exported symbols of libhakmem.so"
if command -v nm >/dev/null; then
    # Only the public API (hak_*, hakmem_*) may be exported: everything else must be hidden.
    bad=$(nm -D --defined-only "$libpath/libhakmem.so" | awk '{print $NF}' |
          grep -Ev '^(hak_|hakmem_|_init$|_fini$|_edata$|_end$|__bss_start$)' || true)
    [[ -z $bad ]] || fail "libhakmem.so exports non-API symbols:"$'\n'"$bad"
    exported=$(nm -D --defined-only "$libpath/libhakmem.so")
    grep -q ' T hak_alloc$' <<<"$exported" || fail "hak_alloc not exported"
fi

export LD_LIBRARY_PATH=$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

run_expect() { # <expected variant> <exe>
    local out
    out=$("$2") || fail "$2 exited with status $?"
    printf '%s\n' "$out"
    [[ $out == *"hakmem consumer ($1): OK"* ]] || fail "$2 did not print 'hakmem consumer ($1): OK'"
}

step "find_package(hakmem CONFIG) consumer"
cmake -S "$consumer_src" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE="$config" \
      -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$extra_cflags" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
cmake --build "$work/cmake-build" --config "$config"
exe_dir=$work/cmake-build
[[ -x $exe_dir/consumer_shared ]] || exe_dir=$work/cmake-build/$config
run_expect shared "$exe_dir/consumer_shared"
run_expect static "$exe_dir/consumer_static"
if command -v ldd >/dev/null; then
    # Capture first: with pipefail, `ldd | grep -q` fails at random when grep exits before ldd (SIGPIPE).
    deps=$(ldd "$exe_dir/consumer_shared")
    grep -q "libhakmem.so.0 => $libpath/" <<<"$deps" ||
        fail "consumer_shared does not load the installed libhakmem.so.0"
    if grep -q libhakmem <<<"$(ldd "$exe_dir/consumer_static")"; then
        fail "consumer_static depends on libhakmem.so (hakmem::hakmem_static is not static)"
    fi
fi

step "pkg-config consumer"
export PKG_CONFIG_PATH=$libpath/pkgconfig
command -v pkg-config >/dev/null || fail "pkg-config not found"
[[ $(pkg-config --modversion hakmem) == 0.* ]] || fail "pkg-config --modversion hakmem: unexpected version"
pc_flags=$(pkg-config --cflags --libs hakmem)
echo "pkg-config --cflags --libs hakmem: $pc_flags"
[[ $(pkg-config --static --libs hakmem) == *-lpthread* ]] || fail "pkg-config --static lacks -lpthread"
# shellcheck disable=SC2086 # word splitting of the flags is intended
"$cc" -std=c11 $extra_cflags -DCONSUMER_VARIANT='"pkg-config"' "$consumer_src/main.c" $pc_flags \
      -o "$work/consumer_pc"
run_expect pkg-config "$work/consumer_pc"

step "passed"

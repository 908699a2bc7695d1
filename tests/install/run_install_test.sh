#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install test: install the built tree into a scratch prefix, then build and run a consumer project against it
# through find_package(hakmem CONFIG) (C: shared and static targets; C++11 and C++17: hakmem::hakmem with
# hakmem/hakmem_new_delete.h, hakmem::override, hakmem::override_static), through pkg-config (C), and by hand
# with `c++ ... -Wl,--as-needed -lhakmem_override` (the library must stay in NEEDED).
# The consumers of the override are skipped when extra flags are given (sanitizer builds: the sanitizer
# runtime interposes malloc and operator new itself) or when the override was not built.
# Usage: run_install_test.sh <build-dir> <config> <libdir> <work-dir> <c-compiler> [<extra flags> [<c++>]]
#        (the extra flags go to both compilers; <c++>, the C++ compiler, defaults to c++)
set -euo pipefail

if [[ $# -lt 5 ]]; then
    echo "usage: $0 <build-dir> <config> <libdir> <work-dir> <c-compiler> [<extra-flags> [<c++>]]" >&2
    exit 2
fi
build_dir=$1
config=$2
libdir=$3
work=$4
cc=$5
extra_cflags=${6:-}
cxx=${7:-c++}
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
for f in include/hakmem/hakmem.h include/hakmem/hakmem_new_delete.h \
         "$libdir/libhakmem.so" "$libdir/libhakmem.so.0" "$libdir/libhakmem.a" \
         "$libdir/cmake/hakmem/hakmemConfig.cmake" "$libdir/cmake/hakmem/hakmemConfigVersion.cmake" \
         "$libdir/cmake/hakmem/hakmemTargets.cmake" "$libdir/pkgconfig/hakmem.pc" \
         share/doc/hakmem/LICENSE share/doc/hakmem/CHANGELOG.md; do
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

# The override libraries, when built, define every C++17 form of operator new and delete.
cxx_operators=(_Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t _ZnwmSt11align_val_t _ZnamSt11align_val_t
               _ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t
               _ZdlPv _ZdaPv _ZdlPvm _ZdaPvm _ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t
               _ZdlPvSt11align_val_t _ZdaPvSt11align_val_t _ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t
               _ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t)
have_override=0
[[ -e $libpath/libhakmem_override.so && -e $libpath/libhakmem_override.a ]] && have_override=1
if ((have_override)) && command -v nm >/dev/null; then
    step "C++ operators of the override libraries"
    exported=$(nm -D --defined-only "$libpath/libhakmem_override.so" | awk '$2 == "T" {print $3}')
    archived=$(nm --defined-only "$libpath/libhakmem_override.a" 2>/dev/null | awk '$2 == "T" {print $3}')
    for sym in "${cxx_operators[@]}"; do
        grep -qx "$sym" <<<"$exported" || fail "libhakmem_override.so does not export $sym"
        grep -qx "$sym" <<<"$archived" || fail "libhakmem_override.a does not define $sym"
    done
    echo "all ${#cxx_operators[@]} forms: exported by libhakmem_override.so, defined in libhakmem_override.a"
fi
with_override=$have_override # the consumers of the override: not under sanitizers (see the top)
[[ -z $extra_cflags ]] || with_override=0

export LD_LIBRARY_PATH=$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

run_expect() { # <expected variant> <exe>
    local out
    out=$("$2") || fail "$2 exited with status $?"
    printf '%s\n' "$out"
    [[ $out == *"hakmem consumer ($1): OK"* ]] || fail "$2 did not print 'hakmem consumer ($1): OK'"
}

step "find_package(hakmem CONFIG) consumer, C only"
cmake -S "$consumer_src" -B "$work/cmake-build-c" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE="$config" \
      -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$extra_cflags" -DCONSUMER_CXX=OFF \
      -DCONSUMER_OVERRIDE=$((with_override ? 1 : 0)) -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
cmake --build "$work/cmake-build-c" --config "$config"
exe_dir=$work/cmake-build-c
[[ -x $exe_dir/consumer_shared ]] || exe_dir=$work/cmake-build-c/$config
run_expect shared "$exe_dir/consumer_shared"
run_expect static "$exe_dir/consumer_static"
if ((with_override)); then
    run_expect override_static "$exe_dir/consumer_override_static"
fi

step "find_package(hakmem CONFIG) consumer, C and C++"
cmake -S "$consumer_src" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE="$config" \
      -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$extra_cflags" -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_CXX_FLAGS="$extra_cflags" -DCONSUMER_OVERRIDE=$((with_override ? 1 : 0)) \
      -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
cmake --build "$work/cmake-build" --config "$config"
exe_dir=$work/cmake-build
[[ -x $exe_dir/consumer_shared ]] || exe_dir=$work/cmake-build/$config
run_expect shared "$exe_dir/consumer_shared"
run_expect static "$exe_dir/consumer_static"
cxx_variants=(api)
if ((with_override)); then
    run_expect override_static "$exe_dir/consumer_override_static"
    cxx_variants+=(override override_static)
fi
for std in 11 17; do
    for v in "${cxx_variants[@]}"; do
        run_expect "consumer_cxx${std}_$v" "$exe_dir/consumer_cxx${std}_$v"
    done
done
if command -v ldd >/dev/null; then
    # Capture first: with pipefail, `ldd | grep -q` fails at random when grep exits before ldd (SIGPIPE).
    deps=$(ldd "$exe_dir/consumer_shared")
    grep -q "libhakmem.so.0 => $libpath/" <<<"$deps" ||
        fail "consumer_shared does not load the installed libhakmem.so.0"
    if grep -q libhakmem <<<"$(ldd "$exe_dir/consumer_static")"; then
        fail "consumer_static depends on libhakmem.so (hakmem::hakmem_static is not static)"
    fi
    if ((with_override)); then
        grep -q "libhakmem_override.so => $libpath/" <<<"$(ldd "$exe_dir/consumer_cxx11_override")" ||
            fail "consumer_cxx11_override does not load the installed libhakmem_override.so"
        if grep -q libhakmem <<<"$(ldd "$exe_dir/consumer_cxx11_override_static")"; then
            fail "consumer_cxx11_override_static depends on a hakmem shared library"
        fi
    fi
fi

if ((with_override)); then
    step "C++ consumers linked by hand: $cxx ... -Wl,--as-needed -lhakmem_override"
    for std in 11 17; do
        sized=""
        ((std >= 14)) && sized=-fsized-deallocation
        "$cxx" -std=c++$std $sized -Wall -Wextra -Werror -DCONSUMER_VARIANT="\"c++$std by hand\"" \
               -I"$prefix/include" "$consumer_src/cxx_main.cpp" \
               -Wl,--as-needed -L"$libpath" -lhakmem_override -ldl -o "$work/consumer_cxx${std}_hand"
        run_expect "c++$std by hand" "$work/consumer_cxx${std}_hand"
    done

    step "--as-needed keeps libhakmem_override.so for operator new alone"
    "$cxx" -std=c++11 -Wall -Wextra -Werror "$consumer_src/as_needed.cpp" -Wl,--as-needed -L"$libpath" \
           -lhakmem_override -o "$work/as_needed"
    command -v readelf >/dev/null || fail "readelf not found"
    needed=$(readelf -d "$work/as_needed" | grep '(NEEDED)')
    printf '%s\n' "$needed"
    grep -q '\[libhakmem_override.so\]' <<<"$needed" ||
        fail "the --as-needed link dropped libhakmem_override.so from NEEDED"
    out=$(HAKMEM_SHOW_STATS=1 "$work/as_needed" 2>&1) || fail "as_needed exited with status $?"
    sed -n 1,3p <<<"$out"
    [[ $out == *"as_needed: OK"* && $out == *"hakmem stats"* ]] ||
        fail "as_needed did not run on hakmem (no 'as_needed: OK' and hakmem statistics)"
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

# The README's examples, as the README builds them: the API example (C, and C++11 as it promises), and the C++
# example with the header and, outside sanitizer builds, with the override.
readme=$here/../../README.md
readme_block() { # <section heading> <fence language>: the first fenced block of that language in the section
    awk -v head="$1" -v fence="\`\`\`$2" '
        $0 == head { in_section = 1; next }
        in_section && /^## / { exit }
        in_section && !in_block && $0 == fence { in_block = 1; next }
        in_block && /^```/ { exit }
        in_block { print }' "$readme"
}
if [[ -f $readme ]]; then
    step "README examples"
    readme_block "## Using the API" c >"$work/app.c"
    readme_block "## C++" c++ >"$work/app.cpp"
    [[ -s $work/app.c && -s $work/app.cpp ]] || fail "README.md: no C example in 'Using the API' or C++ one in 'C++'"
    echo '#include <hakmem/hakmem_new_delete.h>' >"$work/new_delete.cpp"
    # shellcheck disable=SC2086 # word splitting of the flags is intended
    {
        "$cc" -std=c11 -Wall -Wextra -Werror $extra_cflags "$work/app.c" $pc_flags -o "$work/readme_c"
        "$cxx" -std=c++11 -Wall -Wextra -Werror $extra_cflags -x c++ "$work/app.c" -x none $pc_flags \
               -o "$work/readme_c_as_cxx"
        "$cxx" -std=c++11 -Wall -Wextra -Werror $extra_cflags "$work/app.cpp" "$work/new_delete.cpp" $pc_flags \
               -o "$work/readme_cxx_api"
    }
    "$work/readme_c" || fail "the README's API example (C) exited with status $?"
    "$work/readme_c_as_cxx" || fail "the README's API example (C++) exited with status $?"
    [[ $("$work/readme_cxx_api") == "on hakmem" ]] || fail "the README's C++ example with the header: not on hakmem"
    if ((with_override)); then
        "$cxx" -Wall -Wextra -Werror "$work/app.cpp" -I"$prefix/include" -L"$libpath" -lhakmem_override \
               -o "$work/readme_cxx_override"
        [[ $("$work/readme_cxx_override") == "on hakmem" ]] ||
            fail "the README's C++ example with the override: not on hakmem"
    fi
    echo "README examples: built and run"
fi

step "passed"

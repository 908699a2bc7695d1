#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Real programs on the override: runs one scenario twice in the same scratch folder, first without and then
# with LD_PRELOAD=<override library> (and HAKMEM_SHOW_STATS=1), and requires that both runs exit 0, print the
# same standard output, and that the preloaded run printed hakmem's statistics (the preload took effect).
# Exits 77 (ctest SKIP_RETURN_CODE) when the program is not installed.
#
# usage: run_programs.sh <libhakmem_override.so> <python|git|gcc|sort|cmake> <scratch-dir> <tests/override dir>
# shellcheck disable=SC2317  # the scenario functions are called indirectly ("scenario_$prog")
set -u
lib=$1
prog=$2
work=$3
srcdir=$4

skip() {
    echo "SKIP: $*"
    exit 77
}
fail() {
    echo "FAIL: $*"
    exit 1
}

[[ -f $lib ]] || fail "no such library: $lib"
unset LD_PRELOAD HAKMEM_SHOW_STATS HAKMEM_ON_ERROR
export LC_ALL=C

# ---- scenarios: each runs in the current (empty) folder, under `set -e -o pipefail`, and prints what must not
# depend on the allocator ----

scenario_python() {
    "$PY" "$srcdir/programs/py_workload.py" 60000
}

scenario_git() {
    export HOME=$PWD/home GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=hakmem GIT_AUTHOR_EMAIL=hakmem@example.com
    export GIT_COMMITTER_NAME=hakmem GIT_COMMITTER_EMAIL=hakmem@example.com
    export GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' GIT_COMMITTER_DATE='2024-01-01T00:00:00Z'
    mkdir -p home repo && cd repo || return 1
    git init -q -b main . || return 1
    for i in $(seq 1 150); do
        seq "$i" $((i * 40)) >"file$i.txt"
    done
    mkdir -p sub/dir && seq 1 20000 >sub/dir/big.txt
    git add -A && git commit -q -m "first commit" || return 1
    for i in $(seq 1 7 150); do
        echo "change $i" >>"file$i.txt"
    done
    git rm -q file2.txt && git mv file3.txt sub/moved.txt || return 1
    git commit -q -am "second commit" || return 1
    git log --stat --format='%H %an %s'
    git diff --stat HEAD~1 HEAD
    git gc -q || return 1
    git fsck --no-progress
    git rev-parse HEAD 'HEAD^{tree}'
    git status --short | wc -l
}

scenario_gcc() {
    {
        echo '#include <stdio.h>'
                for i in $(seq 1 300); do
            echo "static unsigned long f$i(unsigned long x) { unsigned long a[16], r = 0; for (int k = 0; k < 16; k++) a[k] = x * $i + k * (x >> 3); for (int k = 0; k < 16; k++) r ^= a[k] << (k % 7); return r + (x >> $((i % 13))); }"
        done
        echo 'int main(void) { unsigned long s = 1;'
        for i in $(seq 1 300); do
            echo "  s = f$i(s) + $i;"
        done
        echo '  printf("%lu\n", s); return 0; }'
    } >prog.c
    gcc -O2 -Wall -c prog.c -o prog.o || return 1
    gcc prog.o -o prog || return 1
    ./prog || return 1
    sha256sum prog.o
}

scenario_sort() {
    awk 'BEGIN { srand(12345); for (i = 0; i < 300000; i++) printf "%d %s-%d\n", int(rand() * 1e9), "line", i }' \
        >lines.txt || return 1
    sort lines.txt | sha256sum
    sort -n -k1,1 -S 2M --parallel=2 -T . lines.txt | sha256sum
    sort -r -k2 lines.txt >sorted.txt
    head -3 sorted.txt
    cut -d' ' -f1 lines.txt | sort -u | wc -l
}

scenario_cmake() {
    mkdir -p src && cd src || return 1
    cat >CMakeLists.txt <<'CML'
cmake_minimum_required(VERSION 3.13)
project(override_probe C)
include(CheckIncludeFile)
include(CheckSymbolExists)
check_include_file(malloc.h HAVE_MALLOC_H)
check_symbol_exists(posix_memalign stdlib.h HAVE_POSIX_MEMALIGN)
file(GLOB SRCS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
foreach(i RANGE 1 40)
  list(APPEND GEN "item_${i}")
endforeach()
list(SORT GEN)
string(JOIN "," GEN_JOINED ${GEN})
message(STATUS "generated: ${GEN_JOINED}")
configure_file(config.h.in config.h)
add_executable(probe ${SRCS})
target_include_directories(probe PRIVATE ${CMAKE_CURRENT_BINARY_DIR})
CML
    printf '#cmakedefine HAVE_MALLOC_H 1\n#cmakedefine HAVE_POSIX_MEMALIGN 1\n' >config.h.in
    printf '#include "config.h"\n#include <stdio.h>\nint main(void) { printf("malloc.h %%d\\n", HAVE_MALLOC_H); return 0; }\n' \
        >main.c
    cd .. || return 1
    cmake -S src -B build -G "Unix Makefiles" | sed -E 's/ \([0-9.]+s\)$//' || return 1
    [[ -f build/Makefile ]] || return 1
    cmake --build build >/dev/null || return 1
    ./build/probe
    grep -E '^(HAVE_|CMAKE_C_COMPILER_ID)' build/CMakeCache.txt | sort
}

# ---- the program and how to run it ----
# probe: a quick command of the program, run with LD_DEBUG=bindings to prove that malloc binds to the
# override. expect_stats: whether the scenario's processes keep stderr open until exit, so that
# HAKMEM_SHOW_STATS=1 reports can appear (coreutils and mawk close stderr in an atexit handler, before
# hakmem's statistics destructor runs, so their reports are lost).
expect_stats=1
case $prog in
python)
    command -v python3 >/dev/null || skip "python3 is not installed"
    # The real interpreter, not a wrapper script (pyenv shims would run a shell pipeline on every start).
    PY=$(python3 -c 'import sys; print(sys.executable)') || skip "python3 does not run"
    [[ -x $PY ]] || skip "python3 does not report its executable"
    probe=("$PY" -c pass)
    ;;
git | gcc | sort | cmake)
    command -v "$prog" >/dev/null || skip "$prog is not installed"
    probe=("$prog" --version)
    [[ $prog == sort ]] && expect_stats=0
    ;;
*)
    fail "unknown program '$prog'"
    ;;
esac
[[ $prog == sort ]] && { command -v awk >/dev/null || skip "awk (used to make the input) is not installed"; }

rm -rf "$work"
mkdir -p "$work" || fail "cannot create $work"
run=$work/run

# run_once <mode> : runs the scenario in a fresh $run, stdout to $work/out.<mode>, stderr to $work/err.<mode>
run_once() {
    local mode=$1
    rm -rf "$run" && mkdir -p "$run" || return 1
    (
        cd "$run" || exit 1
        set -eo pipefail # any failing command (a crash at exit too) fails the run
        if [[ $mode == preload ]]; then
            export LD_PRELOAD=$lib HAKMEM_SHOW_STATS=1
        fi
        "scenario_$prog"
    ) >"$work/out.$mode" 2>"$work/err.$mode"
}

start=$SECONDS
run_once plain
rc=$?
if ((rc != 0)); then
    cat "$work/err.plain"
    fail "$prog failed without the override (status $rc): the scenario itself is broken here"
fi
t_plain=$((SECONDS - start))
start=$SECONDS
run_once preload
rc=$?
t_preload=$((SECONDS - start))
# Show the preloaded run's stderr without the (many) statistics reports, keeping the first one.
awk '/^hakmem stats/ { n++ } n <= 1 || !/^(hakmem stats|  )/' "$work/err.preload"
((rc == 0)) || fail "$prog failed under LD_PRELOAD=$lib (status $rc)"
if ! cmp -s "$work/out.plain" "$work/out.preload"; then
    diff "$work/out.plain" "$work/out.preload" | head -40
    fail "$prog printed different output under the override"
fi
if ((expect_stats)); then
    grep -q '^hakmem stats' "$work/err.preload" ||
        fail "no hakmem statistics (HAKMEM_SHOW_STATS=1) in the preloaded run"
fi
# The program's malloc (and libc's own calls to it) must bind to the override.
rm -f "$work"/bind.*
LD_PRELOAD=$lib LD_DEBUG=bindings LD_DEBUG_OUTPUT=$work/bind "${probe[@]}" >/dev/null 2>&1 ||
    fail "'${probe[*]}' failed under the override"
grep -qsF "to $lib [0]: normal symbol \`malloc'" "$work"/bind.* ||
    fail "'${probe[*]}': malloc does not bind to $lib (LD_DEBUG=bindings)"
echo "PASS: $prog: same output with and without the override ($(wc -l <"$work/out.plain") lines;" \
    "${t_plain}s plain, ${t_preload}s preloaded)"
rm -rf "$work"
exit 0

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""hakmem's benchmark runner: every workload under hakmem, glibc, mimalloc, jemalloc and tcmalloc.

Runs each workload program (benchmarks/*.c, plain malloc/free) under every allocator found, through
LD_PRELOAD (hakmem: libhakmem_override.so from the build tree; glibc: nothing preloaded), a few repetitions,
interleaving the allocators within each repetition (rotating which goes first) to spread noise. For every run it
records the program's measured seconds and throughput, the wall time, peak RSS and minor page faults (from
os.wait4's rusage) and the exit status: a crash or a timeout is shown as such (CRASH(SIGSEGV), TIMEOUT, EXIT(1)),
never dropped. heap_request (hakmem's private heaps against freeing block by block) and the Google Benchmark
micro-benchmarks run without LD_PRELOAD.

Output: progress lines while running, then per workload a Markdown table of median times with the ratio to
hakmem (allocator's time / hakmem's time: above 1.00 hakmem is faster) and one of peak RSS and page faults, each
with a geometric-mean row; a summary table and the verdicts of the goals. Written to --out: report.md,
runs.csv (every run), summary.csv (medians), and SVG charts (gnuplot) per workload and for the summary.

Modes: default quick (the `bench` target, ~2 minutes on 2 cores), --full (more sizes, threads, repetitions and
longer runs), --smoke (one tiny repetition, for the test suite).

The workloads, their cases per mode, the modes' settings and the goals are data: benchmarks/workloads.json.
The code is in benchmarks/runner/ (running: run.py; reporting: report.py).
"""
import argparse
import os
import sys

from runner.allocators import HAKMEM
from runner.report import write_report
from runner.run import Options, SetupError, prepare, run
from runner.workloads import BenchData, DataError


def per_mode_default(data, setting):
    return ", ".join("%s %g" % (m, getattr(data.mode(m), setting)) for m in data.mode_names)


def parse_args(data, argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True, help="folder with the workload programs")
    ap.add_argument("--override", help="libhakmem_override.so (hakmem under LD_PRELOAD)")
    ap.add_argument("--launcher", help="bench_launch program (default: in --bin-dir)")
    ap.add_argument("--heap-request", help="heap_request program (default: in --bin-dir)")
    ap.add_argument("--gbench", help="micro_gbench program (Google Benchmark); omitted = no micro-benchmarks")
    ap.add_argument("--out", default="bench", help="output folder (report.md, CSV, SVG)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="all sizes, threads, 5 repetitions, longer runs")
    mode.add_argument("--smoke", action="store_true", help="one repetition of tiny cases (for the test suite)")
    ap.add_argument("--reps", type=int, help="repetitions (default: %s)" % per_mode_default(data, "reps"))
    ap.add_argument("--only", help="comma-separated workload keys to run (e.g. larson,prodcons)")
    ap.add_argument("--allocators", help="comma-separated subset of hakmem,glibc,mimalloc,jemalloc,tcmalloc")
    ap.add_argument("--with", dest="extra", action="append", metavar="NAME=LIB.so",
                    help="another allocator to preload (repeatable)")
    ap.add_argument("--timeout", type=float, help="seconds per run before it counts as TIMEOUT (default: %s)" %
                    per_mode_default(data, "timeout"))
    ap.add_argument("--no-gbench", action="store_true", help="skip the Google Benchmark micro-benchmarks")
    return ap.parse_args(argv)


def comma_list(value):
    return None if value is None else [a.strip() for a in value.split(",") if a.strip()]


def options(args):
    return Options(bin_dir=args.bin_dir, out=args.out, override=args.override, launcher=args.launcher,
                   heap_request=args.heap_request, gbench=None if args.no_gbench else args.gbench,
                   only=comma_list(args.only) if args.only else None, allocators=comma_list(args.allocators),
                   extra=args.extra or [], reps=args.reps, timeout=args.timeout)


def hakmem_failed(bench, results):
    """Whether a column that is hakmem (or stands for it) had a failed run."""
    hakmem = {(w.key, v.name) for w in bench.workloads for v in bench.columns(w) if v.counts_as == HAKMEM}
    return any((wk, vn) in hakmem for (wk, _, vn), _ in results.failures())


def main(argv=None):
    try:
        data = BenchData.load()
        args = parse_args(data, argv)
        os.makedirs(args.out, exist_ok=True)
        bench = prepare(data, data.mode("full" if args.full else "smoke" if args.smoke else "quick"), options(args))
    except (DataError, SetupError) as e:
        print("run_benchmarks: %s" % e, file=sys.stderr)
        return 2
    results = run(bench)
    write_report(bench, results, data.goals(), sys.argv)
    # 0 even when an allocator fails (the tables show it), except in smoke mode, where a hakmem failure fails
    # the test.
    return 1 if args.smoke and hakmem_failed(bench, results) else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Runs random_mixed for hakmem and glibc, interleaved, and prints a Markdown table of medians.

For every size (16 B .. 8 KiB and mixed 16..1040 B) it runs both allocators back to back, alternating which
goes first, `--reps` times, and reports the median M ops/s of each, the ratio hakmem/glibc, and a geometric
mean row. The table is also written as CSV (--csv) and Markdown (--md, default: next to the CSV).

The number of operations per run is calibrated (unless --ops is given) so that the whole run stays within
--budget seconds.
"""
import argparse
import csv
import math
import os
import re
import statistics
import subprocess
import sys
import time

SIZES = ["16", "32", "64", "128", "256", "512", "1024", "2048", "4096", "8192", "mixed"]
LINE = re.compile(r"alloc=(\S+) size=(\S+) slots=(\d+) ops=(\d+) seconds=([0-9.]+) mops=([0-9.]+)")


def run_one(binary, alloc, size, ops, slots, seed):
    cmd = [binary, "--alloc", alloc, "--ops", str(ops), "--slots", str(slots),
           "--size", "0" if size == "mixed" else size, "--seed", str(seed)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = LINE.search(out)
    if not m:
        raise RuntimeError("unexpected output from %s: %r" % (" ".join(cmd), out))
    return float(m.group(6)), float(m.group(5))


def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True, help="path to the random_mixed executable")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--ops", type=int, default=0, help="operations per run (0 = calibrate to --budget)")
    ap.add_argument("--slots", type=int, default=8192)
    ap.add_argument("--seed", type=int, default=0x2545F4914F6CDD1D)
    ap.add_argument("--budget", type=float, default=60.0, help="target total seconds when calibrating")
    ap.add_argument("--sizes", default=",".join(SIZES), help="comma-separated sizes (and 'mixed')")
    ap.add_argument("--csv", help="write the table as CSV here")
    ap.add_argument("--md", help="write the Markdown table here (default: CSV path with .md)")
    args = ap.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    started = time.monotonic()

    ops = args.ops
    if ops <= 0:
        # Time a short run of each allocator on a few sizes; scale so that all runs fit the budget. The
        # slower sizes (large fixed sizes touch more memory) count too.
        probe_ops = 1000000
        per_op = []
        for size in ("mixed", sizes[-2] if len(sizes) > 1 else sizes[0]):
            for alloc in ("hakmem", "system"):
                _, secs = run_one(args.binary, alloc, size, probe_ops, args.slots, args.seed)
                per_op.append(secs / probe_ops)
        mean_per_op = sum(per_op) / len(per_op)
        runs = len(sizes) * 2 * args.reps
        overhead = 0.01 * runs  # process start-up and teardown
        ops = int(max(args.budget - overhead - (time.monotonic() - started), 5.0) / (runs * mean_per_op * 1.3))
        ops = max(500000, min(ops, 50000000))

    print("random_mixed: %d ops per run, %d slots, %d repetitions, hakmem and glibc interleaved"
          % (ops, args.slots, args.reps), flush=True)
    rows = []
    for size in sizes:
        res = {"hakmem": [], "system": []}
        for rep in range(args.reps):
            order = ("hakmem", "system") if rep % 2 == 0 else ("system", "hakmem")
            for alloc in order:
                mops, _ = run_one(args.binary, alloc, size, ops, args.slots, args.seed)
                res[alloc].append(mops)
        h = statistics.median(res["hakmem"])
        gl = statistics.median(res["system"])
        rows.append((size, h, gl, h / gl if gl > 0 else 0.0))
        print("  size %-5s  hakmem %8.2f  glibc %8.2f M ops/s" % (size, h, gl), flush=True)

    gm = ("geomean", geomean([r[1] for r in rows]), geomean([r[2] for r in rows]),
          geomean([r[3] for r in rows]))
    lines = ["| size (B) | hakmem M ops/s (median) | glibc M ops/s (median) | hakmem/glibc |",
             "|---:|---:|---:|---:|"]
    for r in rows + [gm]:
        label = "**%s**" % r[0] if r[0] == "geomean" else r[0]
        lines.append("| %s | %.2f | %.2f | %.2fx |" % (label, r[1], r[2], r[3]))
    table = "\n".join(lines)
    print()
    print(table)
    print()
    print("(%d ops per run, median of %d; total %.1f s)" % (ops, args.reps, time.monotonic() - started))

    if args.csv:
        os.makedirs(os.path.dirname(os.path.abspath(args.csv)), exist_ok=True)
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["size", "hakmem_mops_median", "glibc_mops_median", "ratio_hakmem_glibc"])
            for r in rows + [gm]:
                w.writerow([r[0], "%.3f" % r[1], "%.3f" % r[2], "%.4f" % r[3]])
        md = args.md or os.path.splitext(args.csv)[0] + ".md"
        with open(md, "w") as f:
            f.write(table + "\n")
        print("wrote %s and %s" % (args.csv, md))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
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
with a geometric-mean row; a summary table and a check against the goal. Written to --out: report.md,
runs.csv (every run), summary.csv (medians), and SVG charts (gnuplot) per workload and for the summary.

Modes: default quick (the `bench` target, ~2 minutes on 2 cores), --full (more sizes, threads, repetitions and
longer runs), --smoke (one tiny repetition, for the test suite).
"""
import argparse
import csv
import glob
import math
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

# ---------------------------------------------------------------------------------------------------------------
# Allocators

LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/local/lib", "/usr/lib64", "/usr/lib"]
PEERS = [  # name, library file patterns in order of preference
    ("mimalloc", ["libmimalloc.so.2", "libmimalloc.so.*", "libmimalloc.so"]),
    ("jemalloc", ["libjemalloc.so.2", "libjemalloc.so"]),
    ("tcmalloc", ["libtcmalloc_minimal.so.4", "libtcmalloc.so.4"]),
]


class Variant:
    """One column of a table: an allocator (LD_PRELOAD library or none) or a mode of heap_request."""

    def __init__(self, name, preload=None, args=()):
        self.name, self.preload, self.args = name, preload, list(args)


def find_lib(patterns):
    for d in LIB_DIRS:
        for pat in patterns:
            hits = sorted(glob.glob(os.path.join(d, pat)))
            if hits:
                return os.path.realpath(hits[0])
    return None


def preload_works(lib):
    """ld.so only warns (and carries on) when a preload fails; check that it loads cleanly."""
    env = dict(os.environ, LD_PRELOAD=lib)
    try:
        r = subprocess.run(["/bin/true"], env=env, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0 and "cannot be preloaded" not in r.stderr and "ERROR" not in r.stderr


def find_allocators(args):
    found, notes = [], []
    override = os.path.abspath(args.override) if args.override else None
    if override and os.path.exists(override) and preload_works(override):
        found.append(Variant("hakmem", override))
    else:
        notes.append("hakmem: override library not found or not loadable (%s); ratios are to glibc" % args.override)
    found.append(Variant("glibc"))
    for name, pats in PEERS:
        lib = find_lib(pats)
        if lib and preload_works(lib):
            found.append(Variant(name, lib))
        else:
            notes.append("%s: not installed (looked for %s)" % (name, ", ".join(pats)))
    for spec in args.extra or []:
        name, _, lib = spec.partition("=")
        found.append(Variant(name, os.path.abspath(lib)))
    if args.allocators:
        want = [a.strip() for a in args.allocators.split(",") if a.strip()]
        found = [v for v in found if v.name in want]
    return found, notes


# ---------------------------------------------------------------------------------------------------------------
# Workloads. Each case: (label, program arguments). Sizes are chosen so that a quick case runs ~0.05-0.3 s.

class Workload:
    def __init__(self, key, title, what, program, cases, kind="preload"):
        self.key, self.title, self.what, self.program, self.cases, self.kind = key, title, what, program, cases, kind


def define_workloads(mode):
    quick, full, smoke = mode == "quick", mode == "full", mode == "smoke"

    def pick(q, f, s):
        return f if full else s if smoke else q

    W = []
    # random_mixed ---------------------------------------------------------------------------------------------
    ops = pick("6M", "30M", "200k")
    sizes = pick([64, 1024, 8192], [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192], [64])
    cases = [("mixed 16-1040 B", ["--ops", ops])]
    cases += [("%s" % human_size(s), ["--ops", ops, "--size", str(s)]) for s in sizes]
    big_ops = pick("30k", "200k", "2k")
    cases.append(("16 KiB-1 MiB, pages touched",
                  ["--ops", big_ops, "--slots", "256", "--min", "16Ki", "--max", "1Mi", "--touch", "1"]))
    if full:
        cases.append(("16-256 KiB, pages touched",
                      ["--ops", "400k", "--slots", "512", "--min", "16Ki", "--max", "256Ki", "--touch", "1"]))
    W.append(Workload("random_mixed", "random-mixed",
                      "ring of 8192 slots (256/512 for the large ranges): free a random slot if full, else allocate "
                      "and write; one op = one malloc or free", "random_mixed", cases))
    # larson ----------------------------------------------------------------------------------------------------
    threads = pick([1, 2, 4, 8, 16], [1, 2, 4, 8, 16], [1, 4])
    ops, rounds = pick(("6M", "10"), ("30M", "20"), ("100k", "3"))
    W.append(Workload("larson", "larson (server simulation)",
                      "each thread replaces random blocks (8-1000 B) of a 1000-block array, then hands the array to "
                      "a new thread (%s generations); one op = free + malloc" % rounds, "larson",
                      [("%d thread%s" % (t, "s" if t > 1 else ""),
                        ["--threads", str(t), "--ops", ops, "--rounds", rounds]) for t in threads]))
    # prodcons --------------------------------------------------------------------------------------------------
    ops = pick("2M", "10M", "50k")
    pcs = pick([(1, 1, 16, 1040), (2, 2, 16, 1040)],
               [(1, 1, 16, 1040), (1, 1, 16, 128), (2, 2, 16, 1040), (4, 4, 16, 1040), (1, 3, 16, 1040)],
               [(1, 1, 16, 1040)])
    W.append(Workload("prodcons", "producer-consumer",
                      "producers allocate and write blocks, pass them in batches of 64 through a queue; consumers "
                      "free them; one op = one block", "prodcons",
                      [("%dP/%dC %d-%d B" % (p, c, lo, hi),
                        ["--producers", str(p), "--consumers", str(c), "--ops", ops, "--min", str(lo),
                         "--max", str(hi)]) for p, c, lo, hi in pcs]))
    # false sharing ---------------------------------------------------------------------------------------------
    its, reps = pick(("4000", "20000"), ("8000", "50000"), ("200", "200"))
    fs = pick([("active", 2), ("passive", 2)],
              [("active", 1), ("active", 2), ("active", 4), ("active", 8), ("passive", 2), ("passive", 4),
               ("passive", 8)],
              [("active", 2), ("passive", 2)])
    W.append(Workload("false_sharing", "false sharing",
                      "threads allocate 8-byte objects and write them %s times each (active = cache-thrash, "
                      "passive = cache-scratch); %s objects in all" % (reps, its), "false_sharing",
                      [("%s, %d thread%s" % (m, t, "s" if t > 1 else ""),
                        ["--mode", m, "--threads", str(t), "--iterations", its, "--reps", reps]) for m, t in fs]))
    # thread churn ----------------------------------------------------------------------------------------------
    nthr = pick("1500", "10000", "50")
    conc = pick([2, 8], [1, 2, 4, 8, 16], [4])
    W.append(Workload("thread_churn", "thread churn",
                      "%s short-lived threads: each frees the 100 blocks handed on by an earlier thread, allocates "
                      "500 (16-2048 B), hands 100 on, exits; one op = one block" % nthr, "thread_churn",
                      [("%d at a time" % c, ["--threads", nthr, "--concurrency", str(c)]) for c in conc]))
    # fragmentation ---------------------------------------------------------------------------------------------
    frag = pick([("64 MiB live, 1 thread", ["--peak", "64Mi", "--rounds", "4"])],
                [("384 MiB live, 1 thread", ["--peak", "384Mi", "--rounds", "6"]),
                 ("256 MiB live, 2 threads", ["--peak", "256Mi", "--rounds", "6", "--threads", "2"])],
                [("4 MiB live", ["--peak", "4Mi", "--rounds", "3"])])
    W.append(Workload("fragmentation", "mixed-size stress (fragmentation)",
                      "fill to the live peak with log-uniform sizes (16-512 B, 512 B-16 KiB, 16 B-64 KiB by round), "
                      "write every byte, free 75% at random, repeat; compare peak RSS with live_peak", "fragmentation",
                      frag))
    # large blocks ----------------------------------------------------------------------------------------------
    large = pick([("64 KiB-64 MiB", ["--ops", "120"])],
                 [("64 KiB-64 MiB", ["--ops", "1000"]), ("64 KiB-1 MiB", ["--ops", "20000", "--max", "1Mi"]),
                  ("1-64 MiB", ["--ops", "400", "--min", "1Mi"])],
                 [("64 KiB-4 MiB", ["--ops", "20", "--max", "4Mi"])])
    W.append(Workload("large_blocks", "large blocks",
                      "4 slots; replace a random one with a new block of log-uniform size, touching every page; "
                      "one op = one allocation", "large_blocks", large))
    # realloc growth --------------------------------------------------------------------------------------------
    rg = pick([("2 buffers to 64 MiB, +256 B", ["--max", "64Mi", "--step", "256", "--rounds", "1"])],
              [("2 buffers to 64 MiB, +256 B", ["--max", "64Mi", "--step", "256", "--rounds", "3"]),
               ("1 buffer to 64 MiB, +4 KiB", ["--max", "64Mi", "--step", "4096", "--buffers", "1", "--rounds", "3"]),
               ("16 buffers to 1 MiB, +16 B", ["--max", "1Mi", "--step", "16", "--buffers", "16", "--rounds", "3"])],
              [("2 buffers to 1 MiB, +256 B", ["--max", "1Mi", "--step", "256", "--rounds", "1"])])
    W.append(Workload("realloc_growth", "realloc growth",
                      "grow buffers side by side with realloc by small steps, writing the new bytes and checking the "
                      "old ones; one op = one realloc", "realloc_growth", rg))
    # heap per request (hakmem's API, no LD_PRELOAD) ------------------------------------------------------------
    total = pick(2000000, 10000000, 20000)
    blocks = pick([100, 10000], [10, 100, 1000, 10000, 100000], [1000])
    W.append(Workload("heap_request", "heap per request (hakmem API)",
                      "per request: allocate N blocks (log-uniform 16-2048 B) and write them, then release them all "
                      "with hak_heap_destroy (heap+destroy), hak_free one by one (hak_free), or glibc free one by "
                      "one; %d blocks in all" % total, "heap_request",
                      [("%d blocks/request" % b, ["--requests", str(max(1, total // b)), "--blocks", str(b)])
                       for b in blocks], kind="heap"))
    return W


def human_size(n):
    for unit, div in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div and n % div == 0:
            return "%d %s" % (n // div, unit)
    return "%d B" % n


# ---------------------------------------------------------------------------------------------------------------
# Running

RESULT = re.compile(r"^RESULT (.*)$", re.M)
LAUNCH = re.compile(r"^LAUNCH (.*)$", re.M)
LAUNCHER = None  # bench_launch: forks the program, reports its wait4 rusage (see bench_launch.c)


def parse_kv(text):
    return dict(f.split("=", 1) for f in text.split() if "=" in f)


def signal_name(sig):
    try:
        return signal.Signals(sig).name
    except ValueError:
        return "signal %d" % sig


def run_one(cmd, preload, timeout, env=None):
    """Runs cmd (with LD_PRELOAD=preload if given) through the launcher. Returns a dict with status, seconds,
    ops, mops, wall, maxrss_kib, minflt, majflt, extra, stderr."""
    env = dict(env or os.environ)
    env.pop("LD_PRELOAD", None)
    if LAUNCHER:
        full = [LAUNCHER] + (["-p", preload] if preload else []) + cmd
    else:
        full = cmd
        if preload:
            env["LD_PRELOAD"] = preload
    timed_out = threading.Event()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(full, stdout=out, stderr=err, env=env, start_new_session=True)

        def kill():
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            while True:
                try:
                    _, status, ru = os.wait4(proc.pid, 0)
                    break
                except InterruptedError:
                    continue
        finally:
            timer.cancel()
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    r = {"status": "ok", "wall": wall, "maxrss_kib": ru.ru_maxrss, "minflt": ru.ru_minflt, "majflt": ru.ru_majflt,
         "seconds": None, "ops": None, "mops": None, "extra": {}, "stderr": stderr.strip()[-400:]}
    code = os.waitstatus_to_exitcode(status)  # negative: killed by that signal
    launch = LAUNCH.findall(stdout)
    if LAUNCHER and launch and not timed_out.is_set():
        kv = parse_kv(launch[-1])
        code = int(kv["status"])
        r["wall"] = float(kv["wall"])
        r["maxrss_kib"], r["minflt"], r["majflt"] = int(kv["maxrss_kib"]), int(kv["minflt"]), int(kv["majflt"])
    if timed_out.is_set():
        r["status"] = "TIMEOUT"
    elif code < 0:
        r["status"] = "CRASH(%s)" % signal_name(-code)
    elif code != 0:
        r["status"] = "EXIT(%d)" % code
    elif "cannot be preloaded" in stderr:
        r["status"] = "PRELOAD-FAILED"
    else:
        m = RESULT.search(stdout)
        if not m:
            r["status"] = "NO-RESULT"
        else:
            kv = parse_kv(m.group(1))
            try:
                r["seconds"], r["ops"] = float(kv.pop("seconds")), int(kv.pop("ops"))
                r["mops"] = float(kv.pop("mops"))
            except (KeyError, ValueError):
                r["status"] = "NO-RESULT"
            kv.pop("bench", None)
            kv.pop("checksum", None)
            r["extra"] = kv
    return r


def repro_command(prog, args, variant):
    pre = "LD_PRELOAD=%s " % variant.preload if variant.preload else ""
    return pre + " ".join(shlex.quote(x) for x in [prog] + args + variant.args)


def fmt_time(s):
    if s is None:
        return "-"
    if s >= 10:
        return "%.1f s" % s
    if s >= 1:
        return "%.2f s" % s
    if s >= 0.1:
        return "%.0f ms" % (s * 1e3)
    if s >= 0.01:
        return "%.1f ms" % (s * 1e3)
    return "%.2f ms" % (s * 1e3)


def geomean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


class Cell:
    """The runs of one (workload, case, variant)."""

    def __init__(self):
        self.runs = []

    def ok(self):
        return [r for r in self.runs if r["status"] == "ok"]

    def failures(self):
        return [r for r in self.runs if r["status"] != "ok"]

    def status(self):
        f = self.failures()
        if not f:
            return "ok"
        return "%s %d/%d" % (f[0]["status"], len(f), len(self.runs))

    def median(self, key):
        vals = [r[key] for r in self.ok() if r[key] is not None]
        return statistics.median(vals) if vals else None

    def good(self):
        return bool(self.runs) and not self.failures()


# ---------------------------------------------------------------------------------------------------------------
# Report

def ratio_str(x):
    return "-" if x is None else "%.2fx" % x


def workload_tables(w, variants, cells, ref):
    """Markdown for one workload: time table and RSS/faults table, each with a geomean row."""
    lines = ["### %s" % w.title, "", w.what + ".", ""]
    names = [v.name for v in variants]
    ref_name = ref.name if ref else names[0]
    lines.append("Median time; (x) = that column's time / %s's time (above 1.00: %s is faster)." % (ref_name, ref_name))
    lines.append("")
    lines.append("| case | " + " | ".join(names) + " |")
    lines.append("|---|" + "---:|" * len(names))
    for label, _ in w.cases:
        row = []
        rt = cells[(w.key, label, ref_name)].median("seconds")
        for n in names:
            c = cells[(w.key, label, n)]
            if not c.good():
                row.append("**%s**" % c.status())
                continue
            t = c.median("seconds")
            row.append(fmt_time(t) if n == ref_name or not rt else "%s (%.2fx)" % (fmt_time(t), t / rt))
        lines.append("| %s | %s |" % (label, " | ".join(row)))
    # geomean of each column over the cases where it and the reference column both ran cleanly
    if len(w.cases) > 1:
        lines.append("| **geomean** | %s |" % " | ".join(geomean_cell(w, cells, n, ref_name, "seconds", fmt_time)
                                                         for n in names))
    lines.append("")
    lines.append("Peak RSS (median, MiB) and minor page faults (median); (x) = RSS / %s's RSS." % ref_name)
    lines.append("")
    lines.append("| case | " + " | ".join(names) + " |")
    lines.append("|---|" + "---:|" * len(names))
    for label, _ in w.cases:
        rr = cells[(w.key, label, ref_name)].median("maxrss_kib")
        row = []
        for n in names:
            c = cells[(w.key, label, n)]
            rss, flt = c.median("maxrss_kib"), c.median("minflt")
            if rss is None:
                row.append("**%s**" % c.status())
                continue
            s = "%.1f" % (rss / 1024.0)
            if n != ref_name and rr:
                s += " (%.2fx)" % (rss / rr)
            s += ", %s flt" % fmt_count(flt)
            extra = [r["extra"] for r in c.ok()]
            if extra and "live_peak_kib" in extra[0]:
                s += ", end %.0f" % (statistics.median(float(e.get("rss_end_kib", 0)) for e in extra) / 1024.0)
            row.append(s)
        lines.append("| %s | %s |" % (label, " | ".join(row)))
    if len(w.cases) > 1:
        lines.append("| **geomean** | %s |" % " | ".join(
            geomean_cell(w, cells, n, ref_name, "maxrss_kib", lambda x: "%.1f" % (x / 1024.0)) for n in names))
    if w.key == "fragmentation":
        lp = [r["extra"].get("live_peak_kib") for c in cells.values() for r in c.ok()
              if r["extra"].get("live_peak_kib")]
        if lp:
            lines.append("")
            lines.append("Live bytes at the peak: %s MiB (same for every allocator); `end` = RSS after freeing "
                         "everything, before exit." % ", ".join(sorted({"%.0f" % (int(x) / 1024.0) for x in lp})))
    lines.append("")
    return lines


def pair_cases(w, cells, n, ref):
    """Labels of the cases where both column n and the reference column ran cleanly."""
    return [l for l, _ in w.cases if cells[(w.key, l, n)].good() and cells[(w.key, l, ref)].good()]


def geomean_cell(w, cells, n, ref, key, fmt):
    labels = pair_cases(w, cells, n, ref)
    if not labels:
        return "-"
    v = geomean([cells[(w.key, l, n)].median(key) for l in labels])
    rv = geomean([cells[(w.key, l, ref)].median(key) for l in labels])
    text = fmt(v) if n == ref else "%s (%.2fx)" % (fmt(v), v / rv)
    return text + ("" if len(labels) == len(w.cases) else " [%d/%d cases]" % (len(labels), len(w.cases)))


def fmt_count(n):
    if n is None:
        return "-"
    if n >= 1e6:
        return "%.1fM" % (n / 1e6)
    if n >= 1e3:
        return "%.1fk" % (n / 1e3)
    return "%d" % n


def summarize(workloads, variants_of, cells, ref_name):
    """Per-workload geomean ratio (time and RSS) of every variant to the reference, over the cases where both
    ran cleanly: (time ratio, RSS ratio, cases used, cases)."""
    summary = {}
    for w in workloads:
        names = [v.name for v in variants_of(w)]
        ref = ref_name if w.kind == "preload" else names[0]
        for n in names:
            good = pair_cases(w, cells, n, ref)
            tr = geomean([cells[(w.key, l, n)].median("seconds") / cells[(w.key, l, ref)].median("seconds")
                          for l in good])
            rr = geomean([cells[(w.key, l, n)].median("maxrss_kib") / cells[(w.key, l, ref)].median("maxrss_kib")
                          for l in good])
            summary[(w.key, n)] = (tr, rr, len(good), len(w.cases))
    return summary


# The tiers of the issue "Every size": which cases measure which tier (workload key, case label test).
TIERS = [
    ("small blocks (random-mixed up to 8 KiB)", "random_mixed", lambda l: "KiB-" not in l and "KiB," not in l),
    ("mid sizes (random-mixed 16 KiB and up)", "random_mixed", lambda l: "KiB-" in l or "KiB," in l),
    ("large blocks", "large_blocks", lambda l: True),
    ("realloc growth", "realloc_growth", lambda l: True),
]


def tier_lines(workloads, cells, ref_name):
    """Per tier, hakmem's throughput against glibc case by case (at least 1.0x wanted), and peak RSS against
    glibc on the large-block loop (no more wanted)."""
    if ref_name != "hakmem":
        return []
    out = []
    for title, key, test in TIERS:
        w = next((w for w in workloads if w.key == key), None)
        if w is None:
            continue
        ratios = []
        for label, _ in w.cases:
            h, g = cells.get((key, label, "hakmem")), cells.get((key, label, "glibc"))
            if test(label) and h and g and h.good() and g.good():
                ratios.append((g.median("seconds") / h.median("seconds"), label))
        if not ratios:
            continue
        behind = [(r, l) for r, l in ratios if r < 1.0]
        out.append("- %s: glibc's time / hakmem's %s: %s" %
                   (title, ", ".join("%s %.2fx" % (l, r) for r, l in ratios),
                    "**yes**" if not behind else "**no** (behind on %s)" % ", ".join(l for _, l in behind)))
        if key == "large_blocks":
            for label, _ in w.cases:
                h, g = cells.get((key, label, "hakmem")), cells.get((key, label, "glibc"))
                if h and g and h.good() and g.good():
                    hr, gr = h.median("maxrss_kib") / 1024.0, g.median("maxrss_kib") / 1024.0
                    out.append("  - peak RSS, %s: hakmem %.1f MiB, glibc %.1f MiB: %s" %
                               (label, hr, gr, "no more" if hr <= gr else "**%.2fx glibc's**" % (hr / gr)))
    return out


def goal_lines(workloads, allocs, summary, cells, ref_name):
    """The issue's goal: ahead of glibc on every workload, ahead of the best peer on the geomean of time, with
    peak RSS no higher than the best peer's."""
    out = []
    pre = [w for w in workloads if w.kind == "preload"]
    peers = [v.name for v in allocs if v.name not in ("hakmem", "glibc")]
    overall = {}
    for n in [v.name for v in allocs]:
        overall[n] = (geomean([summary[(w.key, n)][0] for w in pre if (w.key, n) in summary]),
                      geomean([summary[(w.key, n)][1] for w in pre if (w.key, n) in summary]))
    if ref_name != "hakmem":
        return ["- Goal check skipped: hakmem's override library was not available."], overall
    behind_glibc = []
    for w in workloads:
        key = (w.key, "glibc") if w.kind == "preload" else (w.key, "glibc free")
        if key not in summary or summary[key][0] is None:
            continue
        if summary[key][0] < 1.0:
            behind_glibc.append("%s (glibc %.2fx faster)" % (w.key, 1.0 / summary[key][0]))
    out.append("- Ahead of glibc on every workload (geomean of its cases): %s" %
               ("**yes**" if not behind_glibc else "**no**: behind on " + ", ".join(behind_glibc)))
    peers = [n for n in peers if overall[n][0] is not None]
    if peers:
        best = min(peers, key=lambda n: overall[n][0])
        t, r = overall[best]
        out.append("- Best peer on the geomean of time: %s (%.2fx hakmem's time). hakmem ahead: %s" %
                   (best, t, "**yes**" if t and t > 1.0 else "**no** (%s is %.2fx faster)" % (best, 1.0 / t)))
        if r is not None:
            out.append("- Peak RSS (geomean over workloads) vs %s: %s has %.2fx hakmem's RSS. hakmem no higher: %s" %
                       (best, best, r, "**yes**" if r >= 1.0 else "**no** (hakmem %.2fx higher)" % (1.0 / r)))
    # every case where hakmem is behind glibc or behind the best peer
    rows = []
    for w in pre:
        for label, _ in w.cases:
            h = cells[(w.key, label, "hakmem")]
            if not h.good():
                rows.append("  - %s / %s: hakmem **%s**" % (w.key, label, h.status()))
                continue
            ht = h.median("seconds")
            faster = []
            for n in ["glibc"] + peers:
                c = cells.get((w.key, label, n))
                if c and c.good() and c.median("seconds") * 1.01 < ht:
                    faster.append("%s %.2fx" % (n, ht / c.median("seconds")))
            if faster:
                rows.append("  - %s / %s: %s" % (w.key, label, ", ".join(faster)))
    for w in workloads:
        if w.kind != "heap":
            continue
        for label, _ in w.cases:
            h = cells[(w.key, label, "heap+destroy")]
            if not h.good():
                rows.append("  - %s / %s: heap+destroy **%s**" % (w.key, label, h.status()))
                continue
            faster = []
            for n in ("hak_free", "glibc free"):
                c = cells.get((w.key, label, n))
                if c and c.good() and c.median("seconds") * 1.01 < h.median("seconds"):
                    faster.append("%s %.2fx" % (n, h.median("seconds") / c.median("seconds")))
            if faster:
                rows.append("  - %s / %s (faster than heap+destroy): %s" % (w.key, label, ", ".join(faster)))
    if rows:
        out.append("- Cases where another allocator is faster than hakmem by more than 1% (how many times "
                   "faster, medians):")
        out.extend(rows)
    return out, overall


# ---------------------------------------------------------------------------------------------------------------
# Charts (gnuplot)

def gnuplot_bars(path_svg, title, ylabel, groups, series, values, logscale=True):
    """Clustered bars: groups on the x axis, one bar per series. values[(group, series)] -> float or None."""
    if not shutil.which("gnuplot"):
        return False
    dat = path_svg[:-4] + ".dat"
    with open(dat, "w") as f:
        f.write("case " + " ".join('"%s"' % s for s in series) + "\n")
        for g in groups:
            vals = [values.get((g, s)) for s in series]
            f.write('"%s" ' % g.replace('"', "'") + " ".join("NaN" if v is None else "%.6g" % v for v in vals) + "\n")
    script = "\n".join([
        "set terminal svg size %d,420 dynamic font 'sans,11'" % max(640, 90 * len(groups) * max(1, len(series)) // 3),
        "set output '%s'" % path_svg,
        "set title '%s'" % title.replace("'", ""),
        "set ylabel '%s'" % ylabel,
        "set style data histograms",
        "set style histogram clustered gap 1",
        "set style fill solid 0.85 border -1",
        "set boxwidth 0.9",
        "set datafile missing 'NaN'",
        "set key outside right top",
        "set grid ytics",
        "set xtics rotate by 25 right nomirror noenhanced",
        "set bmargin 7",
        "set key noenhanced",
        "set logscale y" if logscale else "set yrange [0:*]",
        "plot for [i=2:%d] '%s' using i:xtic(1) title columnheader(i)" % (len(series) + 1, dat),
    ])
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    return r.returncode == 0


# ---------------------------------------------------------------------------------------------------------------
# Google Benchmark micro-benchmarks

def run_gbench(binary, min_time, out_dir, timeout):
    import json
    jpath = os.path.join(out_dir, "micro_gbench.json")
    cmd = [binary, "--benchmark_min_time=%s" % min_time, "--benchmark_out=%s" % jpath,
           "--benchmark_out_format=json", "--benchmark_format=csv"]
    r = run_one(cmd, None, timeout)
    if r["status"] != "ok" and r["status"] != "NO-RESULT":
        return ["### Micro-benchmarks (Google Benchmark)", "", "**%s**: `%s`" % (r["status"], " ".join(cmd)), ""], r
    try:
        with open(jpath) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        return ["### Micro-benchmarks (Google Benchmark)", "", "could not read %s: %s" % (jpath, e), ""], r
    ns = {}
    for b in data.get("benchmarks", []):
        name = b["name"]
        unit = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}.get(b.get("time_unit", "ns"), 1.0)
        t = b["real_time"] * unit
        if "items_per_second" in b and b["items_per_second"]:
            t = 1e9 / b["items_per_second"]
        ns[name] = t
    sizes = sorted({int(n.split("/")[1]) for n in ns if n.startswith("BM_hak_alloc_free/")})
    lines = ["### Micro-benchmarks (Google Benchmark, hakmem's C API)", "",
             "ns per alloc+free pair of one block, the same block size in a loop (fast paths only); "
             "glibc = malloc/free in the same program. min_time %s s per benchmark." % min_time, "",
             "| size (B) | hak_alloc+hak_free | malloc+free (glibc) | glibc/hakmem | hak_heap_alloc+hak_free |",
             "|---:|---:|---:|---:|---:|"]
    for s in sizes:
        h, g = ns.get("BM_hak_alloc_free/%d" % s), ns.get("BM_malloc_free/%d" % s)
        hh = ns.get("BM_hak_heap_alloc_free/%d" % s)
        lines.append("| %d | %.1f | %s | %s | %s |" % (s, h, "-" if g is None else "%.1f" % g,
                                                      "-" if not (g and h) else "%.2fx" % (g / h),
                                                      "-" if hh is None else "%.1f" % hh))
    hs = [ns.get("BM_hak_alloc_free/%d" % s) for s in sizes]
    gs = [ns.get("BM_malloc_free/%d" % s) for s in sizes]
    if sizes:
        lines.append("| **geomean** | %.1f | %.1f | %.2fx | |" % (geomean(hs), geomean(gs), geomean(gs) / geomean(hs)))
    for n in sorted(ns):
        if n.startswith("BM_hak_heap_alloc_destroy/"):
            lines.append("")
            lines.append("hak_heap_create + %s x hak_heap_alloc (16-1024 B) + hak_heap_destroy: %.1f ns per block." %
                         (n.split("/")[1], ns[n]))
    lines.append("")
    return lines, r


# ---------------------------------------------------------------------------------------------------------------

def machine_info():
    info = {"nproc": str(os.cpu_count()), "kernel": platform.release(), "cpu": "?", "glibc": "?"}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["glibc"] = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        pass
    try:
        with open("/proc/meminfo") as f:
            info["mem"] = "%.1f GiB" % (int(f.readline().split()[1]) / 1048576.0)
    except (OSError, ValueError, IndexError):
        pass
    return info


def source_version():
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=20).stdout.strip()
        dirty = subprocess.run(["git", "-C", src, "status", "--porcelain", "--untracked-files=no", "--", "src",
                                "include"], capture_output=True, text=True, timeout=20).stdout.strip()
        untracked = subprocess.run(["git", "-C", src, "status", "--porcelain", "--", "src", "include"],
                                   capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    if not head:
        return "?"
    return head + (" with uncommitted changes in src/ or include/" if dirty or untracked else "")


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def main():
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
    ap.add_argument("--reps", type=int, help="repetitions (default: quick 5, full 5, smoke 1)")
    ap.add_argument("--only", help="comma-separated workload keys to run (e.g. larson,prodcons)")
    ap.add_argument("--allocators", help="comma-separated subset of hakmem,glibc,mimalloc,jemalloc,tcmalloc")
    ap.add_argument("--with", dest="extra", action="append", metavar="NAME=LIB.so",
                    help="another allocator to preload (repeatable)")
    ap.add_argument("--timeout", type=float, help="seconds per run before it counts as TIMEOUT "
                                                  "(default: quick 60, full 600, smoke 60)")
    ap.add_argument("--no-gbench", action="store_true", help="skip the Google Benchmark micro-benchmarks")
    args = ap.parse_args()

    mode_name = "full" if args.full else "smoke" if args.smoke else "quick"
    reps = args.reps or {"quick": 5, "full": 5, "smoke": 1}[mode_name]
    timeout = args.timeout or {"quick": 60.0, "full": 600.0, "smoke": 60.0}[mode_name]
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()
    load_start = loadavg()
    source = source_version()

    allocs, notes = find_allocators(args)
    global LAUNCHER
    LAUNCHER = os.path.abspath(args.launcher or os.path.join(args.bin_dir, "bench_launch"))
    if not os.access(LAUNCHER, os.X_OK):
        notes.append("bench_launch not found: peak RSS includes the runner's own (Python forks the programs)")
        LAUNCHER = None
    ref = next((v for v in allocs if v.name == "hakmem"), None) or next((v for v in allocs if v.name == "glibc"),
                                                                        allocs[0] if allocs else None)
    if not allocs:
        print("run_benchmarks: no allocator selected", file=sys.stderr)
        return 2
    ref_name = ref.name
    heap_prog = args.heap_request or os.path.join(args.bin_dir, "heap_request")
    heap_variants = [Variant("heap+destroy", None, ["--mode", "heap"]), Variant("hak_free", None, ["--mode", "hakfree"]),
                     Variant("glibc free", None, ["--mode", "glibc"])]

    workloads = define_workloads(mode_name)
    if args.only:
        keys = [k.strip() for k in args.only.split(",")]
        unknown = [k for k in keys if k not in [w.key for w in workloads] + ["micro"]]
        if unknown:
            print("run_benchmarks: unknown workload(s) %s" % ", ".join(unknown), file=sys.stderr)
            return 2
        workloads = [w for w in workloads if w.key in keys]
    if not (args.allocators is None or "hakmem" in args.allocators):
        workloads = [w for w in workloads if w.kind != "heap"]

    def variants_of(w):
        return heap_variants if w.kind == "heap" else allocs

    def program_of(w):
        return os.path.abspath(heap_prog if w.kind == "heap" else os.path.join(args.bin_dir, w.program))

    for w in workloads:
        p = program_of(w)
        if not os.access(p, os.X_OK):
            print("run_benchmarks: missing program %s (build the benchmarks first)" % p, file=sys.stderr)
            return 2

    ncases = sum(len(w.cases) for w in workloads)
    nruns = sum(len(w.cases) * len(variants_of(w)) for w in workloads) * reps
    print("hakmem benchmarks (%s): %d workloads, %d cases, %d runs (%d repetitions); allocators: %s" %
          (mode_name, len(workloads), ncases, nruns, reps,
           ", ".join("%s%s" % (v.name, " (%s)" % v.preload if v.preload else "") for v in allocs)), flush=True)
    for n in notes:
        print("  note: " + n, flush=True)

    cells = {}
    for w in workloads:
        for label, _ in w.cases:
            for v in variants_of(w):
                cells[(w.key, label, v.name)] = Cell()
    raw_rows = []
    done = 0
    for rep in range(reps):
        for w in workloads:
            vs = variants_of(w)
            for ci, (label, cargs) in enumerate(w.cases):
                k = (rep + ci) % len(vs)
                order = vs[k:] + vs[:k]  # rotate who goes first
                parts = []
                for v in order:
                    cell = cells[(w.key, label, v.name)]
                    if any(r["status"] == "TIMEOUT" for r in cell.runs):
                        r = dict(next(r for r in cell.runs if r["status"] == "TIMEOUT"))  # not twice
                    else:
                        cmd = [program_of(w)] + cargs + v.args
                        r = run_one(cmd, v.preload, timeout)
                        r["cmd"] = repro_command(program_of(w), cargs, v)
                    cell.runs.append(r)
                    done += 1
                    parts.append("%s %s" % (v.name, fmt_time(r["seconds"]) if r["status"] == "ok" else r["status"]))
                    raw_rows.append([w.key, label, v.name, rep + 1, r["status"], r["seconds"], r["wall"], r["ops"],
                                     r["mops"], r["maxrss_kib"], r["minflt"], r["majflt"],
                                     " ".join("%s=%s" % kv for kv in sorted(r["extra"].items())), r.get("cmd", "")])
                print("[%3.0f%% %5.1fs] rep %d/%d %s / %s: %s" %
                      (100.0 * done / nruns, time.monotonic() - started, rep + 1, reps, w.key, label,
                       "  ".join(parts)), flush=True)

    micro_lines = []
    if args.gbench and not args.no_gbench and (not args.only or "micro" in args.only.split(",")):
        min_time = {"quick": "0.01", "full": "0.2", "smoke": "0.001"}[mode_name]
        print("micro_gbench (Google Benchmark, min_time %s s) ..." % min_time, flush=True)
        micro_lines, _ = run_gbench(args.gbench, min_time, args.out, timeout)

    # ---- report ----
    total = time.monotonic() - started
    info = machine_info()
    load_end = loadavg()
    md = ["# hakmem benchmarks (%s mode)" % mode_name, ""]
    md.append("Machine: %s CPUs, %s, %s RAM, kernel %s, %s. Load average at start %s, at end %s." %
              (info["nproc"], info["cpu"], info.get("mem", "?"), info["kernel"], info["glibc"], load_start, load_end))
    md.append("hakmem source tree at the start of the run: git %s." % source)
    md.append("Allocators: " + ", ".join("%s (%s)" % (v.name, v.preload or "no LD_PRELOAD") for v in allocs) + ".")
    for n in notes:
        md.append("Note: %s." % n)
    md.append("Command: `%s`. %d repetitions per case, allocators interleaved; total %.0f s." %
              (" ".join(shlex.quote(a) for a in sys.argv), reps, total))
    md.append("Times are each program's measured part (medians); peak RSS and page faults come from wait4's "
              "rusage of the whole process.")
    md.append("")
    summary = summarize(workloads, variants_of, cells, ref_name)
    pre = [w for w in workloads if w.kind == "preload"]
    body = []
    for w in workloads:
        lines = workload_tables(w, variants_of(w), cells, ref if w.kind == "preload" else variants_of(w)[0])
        body += lines
    # summary table
    names = [v.name for v in allocs]
    sm = ["## Summary", "",
          "Geometric mean over each workload's cases of (allocator's median time / %s's); above 1.00 %s is faster. "
          "RSS: the same for peak RSS (above 1.00: the allocator uses more). [k/n]: only k of the n cases ran "
          "cleanly for both (see Failures)." % (ref_name, ref_name), "",
          "| workload | " + " | ".join("%s time" % n for n in names) + " | " +
          " | ".join("%s RSS" % n for n in names) + " |",
          "|---|" + "---:|" * (2 * len(names))]
    def sratio(key, i):
        v = summary[key]
        return ratio_str(v[i]) + ("" if v[i] is None or v[2] == v[3] else " [%d/%d]" % (v[2], v[3]))

    for w in pre:
        sm.append("| %s | %s | %s |" % (w.key, " | ".join(sratio((w.key, n), 0) for n in names),
                                        " | ".join(sratio((w.key, n), 1) for n in names)))
    goal, overall = goal_lines(workloads, allocs, summary, cells, ref_name)
    if pre:
        sm.append("| **geomean of workloads** | %s | %s |" % (" | ".join(ratio_str(overall[n][0]) for n in names),
                                                           " | ".join(ratio_str(overall[n][1]) for n in names)))
    for w in workloads:
        if w.kind == "heap":
            hv = [v.name for v in variants_of(w)]
            sm.append("")
            sm.append("heap_request (time / heap+destroy's): " +
                      ", ".join("%s %s" % (n, ratio_str(summary[(w.key, n)][0])) for n in hv[1:]) +
                      "; peak RSS: " + ", ".join("%s %s" % (n, ratio_str(summary[(w.key, n)][1])) for n in hv[1:]) + ".")
    sm.append("")
    sm.append("Goal (hakmem ahead of glibc on every workload, ahead of the best peer on the geomean of time, peak RSS "
              "no higher than the best peer's):")
    sm.append("")
    sm.extend(goal)
    sm.append("")
    tiers = tier_lines(workloads, cells, ref_name)
    if tiers:
        sm.append("Tiers against glibc (at least 1.0x glibc's throughput in every tier; peak RSS no more than "
                  "glibc's on the large-block loop):")
        sm.append("")
        sm.extend(tiers)
        sm.append("")
    failures = [(key, r) for key, c in cells.items() for r in c.failures()]
    if failures:
        sm.append("## Failures (crashes, timeouts, errors)")
        sm.append("")
        seen = set()
        for (wk, label, vn), r in failures:
            if (wk, label, vn, r["status"]) in seen:
                continue
            seen.add((wk, label, vn, r["status"]))
            sm.append("- %s / %s / %s: **%s**. Reproduce: `%s`%s" %
                      (wk, label, vn, r["status"], r.get("cmd", "?"),
                       (" — stderr: `%s`" % r["stderr"].replace("`", "'").replace("\n", " | ")[-300:])
                       if r["stderr"] else ""))
        sm.append("")
    md += sm + ["## Workloads", ""] + body + micro_lines
    report = "\n".join(md) + "\n"

    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report)
    with open(os.path.join(args.out, "runs.csv"), "w", newline="") as f:
        cw = csv.writer(f)
        cw.writerow(["workload", "case", "allocator", "rep", "status", "seconds", "wall_seconds", "ops", "mops",
                     "maxrss_kib", "minflt", "majflt", "extra", "command"])
        cw.writerows(raw_rows)
    with open(os.path.join(args.out, "summary.csv"), "w", newline="") as f:
        cw = csv.writer(f)
        cw.writerow(["workload", "case", "allocator", "status", "median_seconds", "median_wall_seconds",
                     "median_mops", "ratio_to_" + ref_name, "median_maxrss_kib", "median_minflt", "runs"])
        for w in workloads:
            vs = variants_of(w)
            r0 = ref_name if w.kind == "preload" else vs[0].name
            for label, _ in w.cases:
                rt = cells[(w.key, label, r0)].median("seconds")
                for v in vs:
                    c = cells[(w.key, label, v.name)]
                    t = c.median("seconds")
                    cw.writerow([w.key, label, v.name, c.status(), t, c.median("wall"), c.median("mops"),
                                 "%.4f" % (t / rt) if t and rt else "", c.median("maxrss_kib"), c.median("minflt"),
                                 len(c.runs)])
    charts = 0
    for w in workloads:
        vs = [v.name for v in variants_of(w)]
        labels = [l for l, _ in w.cases]
        vals = {(l, n): cells[(w.key, l, n)].median("seconds") * 1e3 if cells[(w.key, l, n)].good() else None
                for l in labels for n in vs}
        charts += gnuplot_bars(os.path.join(args.out, "%s.svg" % w.key), "%s: median time (lower is better)" % w.title,
                               "ms (log scale)", labels, vs, vals)
    if pre:
        keys = [w.key for w in pre]
        charts += gnuplot_bars(os.path.join(args.out, "summary_time.svg"),
                               "time relative to %s (geomean per workload; above 1 = slower than %s)" % (ref_name, ref_name),
                               "ratio (log scale)", keys, names, {(k, n): summary[(k, n)][0] for k in keys for n in names})
        charts += gnuplot_bars(os.path.join(args.out, "summary_rss.svg"),
                               "peak RSS relative to %s (geomean per workload)" % ref_name,
                               "ratio (log scale)", keys, names, {(k, n): summary[(k, n)][1] for k in keys for n in names})

    print()
    print(report)
    print("Wrote %s/report.md, runs.csv, summary.csv%s. Total %.0f s." %
          (args.out, ", %d SVG charts" % charts if charts else " (no gnuplot: no charts)", time.monotonic() - started))
    # Exit status: 0 even when an allocator fails (the table shows it), except in smoke mode where any hakmem
    # failure fails the test.
    if args.smoke and any(vn in ("hakmem", "heap+destroy", "hak_free") for (_, _, vn), _ in failures):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

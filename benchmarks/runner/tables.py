# SPDX-License-Identifier: MIT
"""The report's Markdown: per workload a table of median times and one of peak RSS and page faults (each with a
geomean row), the summary table, the failures, and the Google Benchmark table."""
import statistics

from .fmt import fmt_count, fmt_ratio, fmt_time
from .results import geomean
from .summary import pair_cases


def table_head(names):
    return ["| case | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]


def geomean_cell(w, cells, n, ref, key, fmt):
    """Geomean of column n over the cases where it and the reference column both ran cleanly."""
    labels = pair_cases(w, cells, n, ref)
    if not labels:
        return "-"
    v = geomean([cells[(w.key, l, n)].median(key) for l in labels])
    rv = geomean([cells[(w.key, l, ref)].median(key) for l in labels])
    text = fmt(v) if n == ref else "%s (%.2fx)" % (fmt(v), v / rv)
    return text + ("" if len(labels) == len(w.cases) else " [%d/%d cases]" % (len(labels), len(w.cases)))


def geomean_row(w, cells, names, ref, key, fmt):
    if len(w.cases) <= 1:
        return []
    return ["| **geomean** | %s |" % " | ".join(geomean_cell(w, cells, n, ref, key, fmt) for n in names)]


def time_text(c, n, ref, rt):
    if not c.good():
        return "**%s**" % c.status()
    t = c.median("seconds")
    return fmt_time(t) if n == ref or not rt else "%s (%.2fx)" % (fmt_time(t), t / rt)


def time_table(w, cells, names, ref):
    lines = ["Median time; (x) = that column's time / %s's time (above 1.00: %s is faster)." % (ref, ref), ""]
    lines += table_head(names)
    for case in w.cases:
        rt = cells[(w.key, case.label, ref)].median("seconds")
        row = [time_text(cells[(w.key, case.label, n)], n, ref, rt) for n in names]
        lines.append("| %s | %s |" % (case.label, " | ".join(row)))
    return lines + geomean_row(w, cells, names, ref, "seconds", fmt_time)


def rss_text(c, n, ref, rr):
    rss, flt = c.median("maxrss_kib"), c.median("minflt")
    if rss is None:
        return "**%s**" % c.status()
    s = "%.1f" % (rss / 1024.0)
    if n != ref and rr:
        s += " (%.2fx)" % (rss / rr)
    s += ", %s flt" % fmt_count(flt)
    extra = [r["extra"] for r in c.ok()]
    if extra and "live_peak_kib" in extra[0]:
        s += ", end %.0f" % (statistics.median(float(e.get("rss_end_kib", 0)) for e in extra) / 1024.0)
    return s


def rss_table(w, cells, names, ref):
    lines = ["Peak RSS (median, MiB) and minor page faults (median); (x) = RSS / %s's RSS." % ref, ""]
    lines += table_head(names)
    for case in w.cases:
        rr = cells[(w.key, case.label, ref)].median("maxrss_kib")
        row = [rss_text(cells[(w.key, case.label, n)], n, ref, rr) for n in names]
        lines.append("| %s | %s |" % (case.label, " | ".join(row)))
    return lines + geomean_row(w, cells, names, ref, "maxrss_kib", lambda x: "%.1f" % (x / 1024.0))


def live_peak_note(w, cells):
    """For programs that report live_peak_kib (fragmentation): the live bytes at the peak."""
    lp = [r["extra"].get("live_peak_kib") for (key, _, _), c in cells.items() if key == w.key for r in c.ok()
          if r["extra"].get("live_peak_kib")]
    if not lp:
        return []
    return ["", "Live bytes at the peak: %s MiB (same for every allocator); `end` = RSS after freeing everything, "
            "before exit." % ", ".join(sorted({"%.0f" % (int(x) / 1024.0) for x in lp}))]


def workload_tables(bench, cells, w):
    """Markdown for one workload: time table and RSS/faults table, each with a geomean row."""
    names = [v.name for v in bench.columns(w)]
    ref = bench.ref_of(w)
    lines = ["### %s" % w.title, "", w.description + ".", ""]
    lines += time_table(w, cells, names, ref) + [""] + rss_table(w, cells, names, ref)
    return lines + live_peak_note(w, cells) + [""]


def summary_table(bench, summary):
    """The summary: per preload workload the geomean ratios of every allocator, the geomean of workloads, and
    a line per heap workload."""
    ref, names = bench.ref_name, [v.name for v in bench.allocators]
    lines = ["## Summary", "",
             "Geometric mean over each workload's cases of (allocator's median time / %s's); above 1.00 %s is "
             "faster. RSS: the same for peak RSS (above 1.00: the allocator uses more). [k/n]: only k of the n cases "
             "ran cleanly for both (see Failures)." % (ref, ref), "",
             "| workload | " + " | ".join("%s time" % n for n in names) + " | " +
             " | ".join("%s RSS" % n for n in names) + " |",
             "|---|" + "---:|" * (2 * len(names))]
    pre = [w for w in bench.workloads if w.kind == "preload"]
    for w in pre:
        lines.append("| %s | %s | %s |" % (w.key, " | ".join(summary_ratio(summary, w.key, n, 0) for n in names),
                                           " | ".join(summary_ratio(summary, w.key, n, 1) for n in names)))
    if pre:
        lines.append("| **geomean of workloads** | %s | %s |" % (
            " | ".join(fmt_ratio(summary.overall[n][0]) for n in names),
            " | ".join(fmt_ratio(summary.overall[n][1]) for n in names)))
    for w in bench.workloads:
        if w.kind == "heap":
            lines += ["", heap_summary_line(w, summary)]
    return lines + [""]


def summary_ratio(summary, key, n, i):
    v = summary.by_workload[(key, n)]
    return fmt_ratio(v[i]) + ("" if v[i] is None or v[2] == v[3] else " [%d/%d]" % (v[2], v[3]))


def heap_summary_line(w, summary):
    names = [v.name for v in w.variants]
    return ("%s (time / %s's): " % (w.key, names[0]) +
            ", ".join("%s %s" % (n, fmt_ratio(summary.by_workload[(w.key, n)][0])) for n in names[1:]) +
            "; peak RSS: " +
            ", ".join("%s %s" % (n, fmt_ratio(summary.by_workload[(w.key, n)][1])) for n in names[1:]) + ".")


def failures_section(results):
    """Every (cell, status) that failed, once, with the command that reproduces it."""
    failures = results.failures()
    if not failures:
        return []
    lines, seen = ["## Failures (crashes, timeouts, errors)", ""], set()
    for (wk, label, vn), r in failures:
        if (wk, label, vn, r["status"]) in seen:
            continue
        seen.add((wk, label, vn, r["status"]))
        stderr = r["stderr"].replace("`", "'").replace("\n", " | ")[-300:]
        lines.append("- %s / %s / %s: **%s**. Reproduce: `%s`%s" %
                     (wk, label, vn, r["status"], r.get("cmd", "?"), (" — stderr: `%s`" % stderr) if stderr else ""))
    return lines + [""]


MICRO_TITLE = "### Micro-benchmarks (Google Benchmark)"


def micro_section(micro):
    """The Google Benchmark part: ns per alloc+free pair by size, hakmem against glibc, and the heap lines."""
    if micro is None:
        return []
    if micro.status != "ok":
        return [MICRO_TITLE, "", "**%s**: `%s`" % (micro.status, " ".join(micro.cmd)), ""]
    if micro.error:
        return [MICRO_TITLE, "", micro.error, ""]
    return micro_table(micro) + micro_heap_lines(micro.ns) + [""]


def micro_table(micro):
    ns = micro.ns
    sizes = sorted({int(n.split("/")[1]) for n in ns if n.startswith("BM_hak_alloc_free/")})
    lines = ["### Micro-benchmarks (Google Benchmark, hakmem's C API)", "",
             "ns per alloc+free pair of one block, the same block size in a loop (fast paths only); "
             "glibc = malloc/free in the same program. min_time %s s per benchmark." % micro.min_time, "",
             "| size (B) | hak_alloc+hak_free | malloc+free (glibc) | glibc/hakmem | hak_heap_alloc+hak_free |",
             "|---:|---:|---:|---:|---:|"]
    lines += [micro_row(ns, s) for s in sizes]
    if sizes:
        hs = geomean([ns.get("BM_hak_alloc_free/%d" % s) for s in sizes])
        gs = geomean([ns.get("BM_malloc_free/%d" % s) for s in sizes])
        lines.append("| **geomean** | %.1f | %.1f | %.2fx | |" % (hs, gs, gs / hs))
    return lines


def micro_heap_lines(ns):
    lines = []
    for n in sorted(ns):
        if n.startswith("BM_hak_heap_alloc_destroy/"):
            lines += ["", "hak_heap_create + %s x hak_heap_alloc (16-1024 B) + hak_heap_destroy: %.1f ns per block." %
                      (n.split("/")[1], ns[n])]
    return lines


def micro_row(ns, s):
    h, g = ns.get("BM_hak_alloc_free/%d" % s), ns.get("BM_malloc_free/%d" % s)
    hh = ns.get("BM_hak_heap_alloc_free/%d" % s)
    return "| %d | %.1f | %s | %s | %s |" % (s, h, "-" if g is None else "%.1f" % g,
                                            "-" if not (g and h) else "%.2fx" % (g / h),
                                            "-" if hh is None else "%.1f" % hh)

# SPDX-License-Identifier: MIT
"""Reporting: assembles report.md (header, summary, verdicts of the goals, failures, per-workload tables,
micro-benchmarks), writes it with runs.csv (every run) and summary.csv (medians), draws the charts, and prints
the report."""
import csv
import os
import shlex
import time

from .charts import draw_charts
from .goals import goal_sections
from .machine import loadavg, machine_info
from .summary import Summary
from .tables import failures_section, micro_section, summary_table, workload_tables


def header(bench, results, argv):
    info, total = machine_info(), time.monotonic() - bench.started
    lines = ["# hakmem benchmarks (%s mode)" % bench.mode.name, "",
             "Machine: %s CPUs, %s, %s RAM, kernel %s, %s. Load average at start %s, at end %s." %
             (info["nproc"], info["cpu"], info.get("mem", "?"), info["kernel"], info["glibc"], results.load_start,
              loadavg()),
             "hakmem source tree at the start of the run: git %s." % results.source,
             "Allocators: " + ", ".join("%s (%s)" % (v.name, v.preload or "no LD_PRELOAD")
                                        for v in bench.allocators) + "."]
    lines += ["Note: %s." % n for n in bench.notes]
    return lines + ["Command: `%s`. %d repetitions per case, allocators interleaved; total %.0f s." %
                    (" ".join(shlex.quote(a) for a in argv), bench.reps, total),
                    "Times are each program's measured part (medians); peak RSS and page faults come from wait4's "
                    "rusage of the whole process.", ""]


def markdown(bench, results, summary, goals, argv):
    lines = header(bench, results, argv) + summary_table(bench, summary)
    lines += goal_sections(goals, bench, results.cells) + failures_section(results)
    lines += ["## Workloads", ""]
    for w in bench.workloads:
        lines += workload_tables(bench, results.cells, w)
    return "\n".join(lines + micro_section(results.micro)) + "\n"


RUNS_COLUMNS = ["workload", "case", "allocator", "rep", "status", "seconds", "wall_seconds", "ops", "mops",
                "maxrss_kib", "minflt", "majflt", "extra", "command"]


def write_runs_csv(path, results):
    with open(path, "w", newline="") as f:
        cw = csv.writer(f)
        cw.writerow(RUNS_COLUMNS)
        for run in results.log:
            r = run.result
            cw.writerow([run.workload, run.case, run.column, run.rep, r["status"], r["seconds"], r["wall"], r["ops"],
                         r["mops"], r["maxrss_kib"], r["minflt"], r["majflt"],
                         " ".join("%s=%s" % kv for kv in sorted(r["extra"].items())), r.get("cmd", "")])


def write_summary_csv(path, bench, cells):
    with open(path, "w", newline="") as f:
        cw = csv.writer(f)
        cw.writerow(["workload", "case", "allocator", "status", "median_seconds", "median_wall_seconds",
                     "median_mops", "ratio_to_" + bench.ref_name, "median_maxrss_kib", "median_minflt", "runs"])
        for w in bench.workloads:
            for case in w.cases:
                rt = cells[(w.key, case.label, bench.ref_of(w))].median("seconds")
                for v in bench.columns(w):
                    c = cells[(w.key, case.label, v.name)]
                    t = c.median("seconds")
                    cw.writerow([w.key, case.label, v.name, c.status(), t, c.median("wall"), c.median("mops"),
                                 "%.4f" % (t / rt) if t and rt else "", c.median("maxrss_kib"), c.median("minflt"),
                                 len(c.runs)])


def write_report(bench, results, goals, argv):
    """Writes report.md, runs.csv, summary.csv and the charts into the output folder, and prints the report."""
    summary = Summary(bench, results.cells)
    report = markdown(bench, results, summary, goals, argv)
    with open(os.path.join(bench.out, "report.md"), "w") as f:
        f.write(report)
    write_runs_csv(os.path.join(bench.out, "runs.csv"), results)
    write_summary_csv(os.path.join(bench.out, "summary.csv"), bench, results.cells)
    charts = draw_charts(bench.out, bench, results.cells, summary)
    print()
    print(report)
    print("Wrote %s/report.md, runs.csv, summary.csv%s. Total %.0f s." %
          (bench.out, ", %d SVG charts" % charts if charts else " (no gnuplot: no charts)",
           time.monotonic() - bench.started))

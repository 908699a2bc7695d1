# SPDX-License-Identifier: MIT
"""SVG bar charts drawn by gnuplot (skipped when gnuplot is not installed): median time per case for each
workload, and the summary's geomean ratios per workload."""
import os
import shutil
import subprocess


def gnuplot_script(path_svg, dat, title, ylabel, ngroups, nseries, logscale):
    """Clustered bars with each bar's value written above it, and an axis whose tic labels are plain numbers."""
    width = max(720, 110 * ngroups * max(1, nseries) // 3)
    # bar j of a cluster of n (gap 1) sits at group + (j - (n - 1) / 2) / (n + 1)
    labels = ", ".join(
        "'%s' using ($0 + (%d - %g) / %d.0):%d:(column(%d) == column(%d) ? sprintf('%%.3g', column(%d)) : '') "
        "with labels rotate by 90 left offset 0,0.3 font ',8' notitle" % (dat, j, (nseries - 1) / 2.0, nseries + 1,
                                                                           j + 2, j + 2, j + 2, j + 2)
        for j in range(nseries))
    return "\n".join([
        "set terminal svg size %d,480 dynamic font 'sans,11'" % width,
        "set output '%s'" % path_svg,
        "set title '%s' noenhanced" % title.replace("'", ""),
        "set ylabel '%s'" % ylabel,
        "set style data histograms",
        "set style histogram clustered gap 1",
        "set style fill solid 0.85 border -1",
        "set boxwidth 0.9",
        "set datafile missing 'NaN'",
        "set key outside right top noenhanced autotitle columnhead",  # every plot skips the header line
        "set grid ytics mytics",
        "set format y '%g'",
        "set xtics rotate by 25 right nomirror noenhanced",
        "set bmargin 7",
        "set offsets 0, 0, graph 0.12, 0",  # room for the value labels above the tallest bar
        "set logscale y" if logscale else "set yrange [0:*]",
        "plot for [i=2:%d] '%s' using i:xtic(1) title columnheader(i), %s" % (nseries + 1, dat, labels),
    ])


def gnuplot_bars(path_svg, title, ylabel, groups, series, values, logscale=True):
    """Clustered bars: groups on the x axis, one bar per series. values[(group, series)] -> float or None.
    Writes the data next to the SVG (.dat); returns whether the chart was drawn."""
    if not shutil.which("gnuplot"):
        return False
    dat = path_svg[:-4] + ".dat"
    with open(dat, "w") as f:
        f.write("case " + " ".join('"%s"' % s for s in series) + "\n")
        for g in groups:
            vals = [values.get((g, s)) for s in series]
            f.write('"%s" ' % g.replace('"', "'") + " ".join("NaN" if v is None else "%.6g" % v for v in vals) + "\n")
    script = gnuplot_script(path_svg, dat, title, ylabel, len(groups), len(series), logscale)
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    return r.returncode == 0


def workload_chart(out, bench, cells, w):
    names, labels = [v.name for v in bench.columns(w)], [c.label for c in w.cases]
    vals = {(l, n): cells[(w.key, l, n)].median("seconds") * 1e3 if cells[(w.key, l, n)].good() else None
            for l in labels for n in names}
    return gnuplot_bars(os.path.join(out, "%s.svg" % w.key), "%s: median time (lower is better)" % w.title,
                        "ms (log scale)", labels, names, vals)


def summary_charts(out, bench, summary):
    keys = [w.key for w in bench.workloads if w.kind == "preload"]
    if not keys:
        return 0
    ref, names = bench.ref_name, [v.name for v in bench.allocators]
    drawn = gnuplot_bars(os.path.join(out, "summary_time.svg"),
                         "time relative to %s (geomean per workload; above 1 = slower than %s)" % (ref, ref),
                         "ratio (log scale)", keys, names,
                         {(k, n): summary.by_workload[(k, n)][0] for k in keys for n in names})
    drawn += gnuplot_bars(os.path.join(out, "summary_rss.svg"), "peak RSS relative to %s (geomean per workload)" % ref,
                          "ratio (log scale)", keys, names,
                          {(k, n): summary.by_workload[(k, n)][1] for k in keys for n in names})
    return drawn


def draw_charts(out, bench, cells, summary):
    """Every chart; returns how many were drawn."""
    return sum(workload_chart(out, bench, cells, w) for w in bench.workloads) + summary_charts(out, bench, summary)

# SPDX-License-Identifier: MIT
"""The ratios the report is built on: per workload, the geometric mean over its cases of each column's median
(time, peak RSS) over the reference column's, counting only the cases where both ran cleanly; and the
geometric mean of those over the preload workloads."""
from .results import geomean

METRIC_FIELDS = {"time": "seconds", "rss": "maxrss_kib"}


def pair_cases(w, cells, n, ref):
    """Labels of the cases where both column n and the reference column ran cleanly."""
    return [c.label for c in w.cases if cells[(w.key, c.label, n)].good() and cells[(w.key, c.label, ref)].good()]


class Summary:
    """by_workload[(key, column)] = (time ratio, RSS ratio, cases used, cases); overall[allocator] = (time ratio,
    RSS ratio) over the preload workloads."""

    def __init__(self, bench, cells):
        self.by_workload = {}
        for w in bench.workloads:
            for v in bench.columns(w):
                self.by_workload[(w.key, v.name)] = workload_ratios(w, cells, v.name, bench.ref_of(w))
        pre = [w for w in bench.workloads if w.kind == "preload"]
        self.overall = {v.name: self.geomean_over(pre, v.name) for v in bench.allocators}

    def geomean_over(self, workloads, n):
        ratios = [self.by_workload[(w.key, n)] for w in workloads if (w.key, n) in self.by_workload]
        return geomean([r[0] for r in ratios]), geomean([r[1] for r in ratios])

    def ratio(self, key, column, metric):
        """The workload's geomean ratio for metric ("time" or "rss"), or None."""
        r = self.by_workload.get((key, column))
        return None if r is None else r[0 if metric == "time" else 1]


def workload_ratios(w, cells, n, ref):
    good = pair_cases(w, cells, n, ref)

    def ratio(field):
        return geomean([cells[(w.key, l, n)].median(field) / cells[(w.key, l, ref)].median(field) for l in good])

    return ratio("seconds"), ratio("maxrss_kib"), len(good), len(w.cases)

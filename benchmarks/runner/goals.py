# SPDX-License-Identifier: MIT
"""The verdicts under the summary table: evaluates whatever goals benchmarks/workloads.json lists.

A goal group has a title, a subject (the allocator judged), optionally not_peers (allocators that are not the
subject's peers) and without_subject (a line shown when the subject did not run; without it the group is left
out when the subject did not run). Each check compares the subject's column with the column of `against` (an
allocator, "best peer": the peer with the lowest geomean of time, or "leanest peer": the peer with the lowest
geomean of peak RSS) on a metric (time or rss);
ratio = against's median / the subject's, and the check holds when the ratio is at_least (or above) the value
given. In a heap workload the columns stand for the allocator their counts_as names. Check kinds:
  each_workload         one line: every workload's geomean ratio (all workloads, or those listed in "workloads")
  geomean_of_workloads  one line: the geomean of the workload ratios over the preload workloads
  cases_of              one line: every case of one workload (or those whose label matches cases_matching, or
                        does not match cases_not_matching), listed with its ratio
  each_case_of          a line per case of one workload, with both medians
  cases_behind          the cases where another column beats the subject by more than margin (a fraction)
Each check's "line" (and "yes", "no") is a str.format template; fields: subject, against, ratio, inverse,
ratios, behind, case, subject_value, against_value (seconds, or MiB for rss).
"""
import re

from .results import geomean
from .summary import METRIC_FIELDS, workload_ratios
from .workloads import DataError, text

BEST_PEER = "best peer"  # the peer with the lowest geomean of time
LEANEST_PEER = "leanest peer"  # the peer with the lowest geomean of peak RSS
SCALE = {"time": 1.0, "rss": 1.0 / 1024.0}  # displayed values: seconds, MiB
BETTER = {"time": "faster", "rss": "smaller"}


class Facts:
    """What the checks read: the run's columns and cells, and ratios between two columns."""

    def __init__(self, bench, cells):
        self.bench, self.cells = bench, cells

    def allocator_names(self):
        return [v.name for v in self.bench.allocators]

    def workloads(self, keys=None, kind=None):
        return [w for w in self.bench.workloads if (keys is None or w.key in keys) and kind in (None, w.kind)]

    def column(self, w, allocator):
        """The name of the workload's first column that stands for the allocator, or None."""
        return next((v.name for v in self.bench.columns(w) if v.counts_as == allocator), None)

    def workload_ratio(self, w, against, subject, metric):
        """Geomean ratio over the workload's cases where both columns ran cleanly, or None."""
        a, s = self.column(w, against), self.column(w, subject)
        if a is None or s is None:
            return None
        return workload_ratios(w, self.cells, a, s)[0 if metric == "time" else 1]

    def overall(self, against, subject, metric):
        """Geomean over the preload workloads of the workload ratios, or None."""
        return geomean([self.workload_ratio(w, against, subject, metric) for w in self.workloads(kind="preload")])

    def best_peer(self, subject, not_peers):
        peers = [n for n in self.allocator_names() if n != subject and n not in not_peers]
        peers = [n for n in peers if self.overall(n, subject, "time") is not None]
        return min(peers, key=lambda n: self.overall(n, subject, "time")) if peers else None

    def leanest_peer(self, subject, not_peers):
        peers = [n for n in self.allocator_names() if n != subject and n not in not_peers]
        peers = [n for n in peers if self.overall(n, subject, "rss") is not None]
        return min(peers, key=lambda n: self.overall(n, subject, "rss")) if peers else None

    def good_pairs(self, w, subject, against, selected=lambda label: True):
        """(label, subject's cell, against's cell) for the selected cases where both ran cleanly."""
        s, a = self.column(w, subject), self.column(w, against)
        if s is None or a is None:
            return []
        pairs = [(c.label, self.cells[(w.key, c.label, s)], self.cells[(w.key, c.label, a)]) for c in w.cases
                 if selected(c.label)]
        return [(label, sc, ac) for label, sc, ac in pairs if sc.good() and ac.good()]


class Check:
    """One check of a goal group, as the data gives it."""

    def __init__(self, raw, group):
        self.raw, self.kind = raw, raw["check"]
        self.subject, self.not_peers = group["subject"], group.get("not_peers", [])
        self.metric = raw.get("metric", "time")
        if self.metric not in METRIC_FIELDS:
            raise DataError("goal check %s: metric must be time or rss" % self.kind)
        self.field, self.scale, self.better = METRIC_FIELDS[self.metric], SCALE[self.metric], BETTER[self.metric]

    def against(self, facts):
        name = self.raw.get("against")
        if name == BEST_PEER:
            return facts.best_peer(self.subject, self.not_peers)
        if name == LEANEST_PEER:
            return facts.leanest_peer(self.subject, self.not_peers)
        return name

    def holds(self, ratio):
        if "at_least" in self.raw:
            return ratio >= self.raw["at_least"]
        if "above" in self.raw:
            return ratio > self.raw["above"]
        raise DataError("goal check %s: needs at_least or above" % self.kind)

    def render(self, key, default, **fields):
        return text(self.raw.get(key, default)).format(subject=self.subject, **fields)

    def bullet(self, depth=0):
        return "  " * (self.raw.get("indent", 0) + depth) + "- "

    def verdict_line(self, ok, no, **fields):
        """'- line: verdict', with the check's yes/no templates (default **yes** and no)."""
        verdict = self.render("yes", "**yes**", **fields) if ok else self.render("no", no, **fields)
        return self.bullet() + self.render("line", "", **fields) + ": " + verdict


def each_workload(check, facts):
    against, behind = check.against(facts), []
    for w in facts.workloads(check.raw.get("workloads")):
        r = facts.workload_ratio(w, against, check.subject, check.metric)
        if r is not None and not check.holds(r):
            behind.append("%s (%s %.2fx %s)" % (w.key, against, 1.0 / r, check.better))
    return [check.verdict_line(not behind, "**no**: behind on {behind}", against=against, behind=", ".join(behind))]


def geomean_of_workloads(check, facts):
    against = check.against(facts)
    r = None if against is None else facts.overall(against, check.subject, check.metric)
    if r is None:
        return []
    return [check.verdict_line(check.holds(r), "**no**", against=against, ratio=r, inverse=1.0 / r)]


def case_selector(raw):
    match, exclude = raw.get("cases_matching"), raw.get("cases_not_matching")
    return lambda label: ((match is None or re.search(match, label) is not None) and
                          (exclude is None or re.search(exclude, label) is None))


def workload_of(check, facts):
    return next(iter(facts.workloads([check.raw["workload"]])), None)


def cases_of(check, facts):
    w, against = workload_of(check, facts), check.against(facts)
    pairs = [] if w is None else facts.good_pairs(w, check.subject, against, case_selector(check.raw))
    ratios = [(ac.median(check.field) / sc.median(check.field), label) for label, sc, ac in pairs]
    if not ratios:
        return []
    behind = [label for r, label in ratios if not check.holds(r)]
    return [check.verdict_line(not behind, "**no** (behind on {behind})", against=against, behind=", ".join(behind),
                               ratios=", ".join("%s %.2fx" % (label, r) for r, label in ratios))]


def each_case_of(check, facts):
    w, against, lines = workload_of(check, facts), check.against(facts), []
    for label, sc, ac in [] if w is None else facts.good_pairs(w, check.subject, against, case_selector(check.raw)):
        sv, av = sc.median(check.field) * check.scale, ac.median(check.field) * check.scale
        lines.append(check.verdict_line(check.holds(ac.median(check.field) / sc.median(check.field)), "**no**",
                                        against=against, case=label, subject_value=sv, against_value=av,
                                        ratio=av / sv, inverse=sv / av))
    return lines


def cases_behind(check, facts):
    rows = []
    for w in facts.workloads(kind="preload") + facts.workloads(kind="heap"):
        s = facts.column(w, check.subject)
        if s is not None:
            rows += [row for case in w.cases for row in case_behind(check, facts, w, case.label, s)]
    return [check.bullet() + check.render("line", "") + ":"] + rows if rows else []


def case_behind(check, facts, w, label, s):
    """The row for one case: the subject's failure, or the columns that beat it by more than the margin."""
    sc = facts.cells[(w.key, label, s)]
    if not sc.good():
        return ["%s%s / %s: %s **%s**" % (check.bullet(1), w.key, label, s, sc.status())]
    sv, factor = sc.median(check.field), 1.0 + check.raw.get("margin", 0.0)
    others = [(v.name, facts.cells[(w.key, label, v.name)]) for v in facts.bench.columns(w) if v.name != s]
    beaten = ["%s %.2fx" % (n, sv / c.median(check.field)) for n, c in others
              if c.good() and c.median(check.field) * factor < sv]
    if not beaten:
        return []
    where = "" if s == check.subject else " (%s than %s)" % (check.better, s)
    return ["%s%s / %s%s: %s" % (check.bullet(1), w.key, label, where, ", ".join(beaten))]


CHECKS = {"each_workload": each_workload, "geomean_of_workloads": geomean_of_workloads, "cases_of": cases_of,
          "each_case_of": each_case_of, "cases_behind": cases_behind}


def group_lines(group, facts):
    if group["subject"] not in facts.allocator_names():
        return ["- " + text(group["without_subject"])] if "without_subject" in group else []
    lines = []
    for raw in group["checks"]:
        if raw["check"] not in CHECKS:
            raise DataError("goal check %s: unknown (known: %s)" % (raw["check"], ", ".join(CHECKS)))
        lines += CHECKS[raw["check"]](Check(raw, group), facts)
    return lines


def goal_sections(goals, bench, cells):
    """Per goal group with something to say: its title and its lines."""
    facts, out = Facts(bench, cells), []
    for group in goals:
        lines = group_lines(group, facts)
        if lines:
            out += [text(group["title"]), ""] + lines + [""]
    return out

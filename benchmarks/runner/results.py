# SPDX-License-Identifier: MIT
"""What a run produced: the runs of every (workload, case, column) cell, the runs in the order they ran, and the
Google Benchmark numbers."""
import math
import statistics
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional


def geomean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


class Cell:
    """The runs of one (workload, case, column)."""

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

    def timed_out_run(self):
        """A copy of an earlier run that timed out (such a cell is not run again), or None."""
        return next((dict(r) for r in self.runs if r["status"] == "TIMEOUT"), None)


class Run(NamedTuple):
    """One run, in the order they ran (runs.csv)."""
    workload: str
    case: str
    column: str
    rep: int  # from 1
    result: dict


@dataclass
class Micro:
    """The Google Benchmark step: ns per operation by benchmark name, or why there are none."""
    cmd: List[str]
    min_time: str
    status: str = "ok"
    error: Optional[str] = None
    ns: Dict[str, float] = field(default_factory=dict)


@dataclass
class Results:
    cells: Dict[tuple, Cell]  # (workload key, case label, column name) -> Cell, in table order
    log: List[Run] = field(default_factory=list)
    micro: Optional[Micro] = None
    started: float = 0.0  # time.monotonic() at the start
    load_start: str = "?"
    source: str = "?"

    def cell(self, workload, case, column):
        return self.cells[(workload, case, column)]

    def failures(self):
        """((workload, case, column), run) for every run that did not end ok, in table order."""
        return [(key, r) for key, c in self.cells.items() for r in c.failures()]

# SPDX-License-Identifier: MIT
"""Running: the plan (allocators, workloads, programs, launcher), then every case under every column,
repetition by repetition, the columns interleaved (rotating which goes first) to spread noise, then the
Google Benchmark micro-benchmarks. Prints a progress line per case and repetition."""
import json
import os
import shlex
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .allocators import HAKMEM, find_allocators
from .fmt import fmt_time
from .launch import run_one
from .machine import loadavg, source_version
from .results import Cell, Micro, Results, Run
from .workloads import Mode, Variant, Workload

MICRO_KEY = "micro"  # --only key of the Google Benchmark step


class SetupError(Exception):
    """The run cannot start (no allocator, unknown workload, missing program)."""


@dataclass
class Options:
    """The command line's choices."""
    bin_dir: str
    out: str
    override: Optional[str] = None
    launcher: Optional[str] = None  # default: bench_launch in bin_dir
    heap_request: Optional[str] = None  # default: heap_request in bin_dir
    gbench: Optional[str] = None  # micro_gbench; None: no micro-benchmarks
    only: Optional[List[str]] = None  # workload keys (and MICRO_KEY); None: all
    allocators: Optional[List[str]] = None  # names to keep; None: all found
    extra: List[str] = field(default_factory=list)  # NAME=LIB.so
    reps: Optional[int] = None  # default: the mode's
    timeout: Optional[float] = None  # default: the mode's


@dataclass
class Bench:
    """What every step of a run reads, fixed before the run starts."""
    mode: Mode
    reps: int
    timeout: float
    launcher: Optional[str]  # None: programs are forked by Python (peak RSS then includes the runner's)
    allocators: List[Variant]
    notes: List[str]
    workloads: List[Workload]
    programs: Dict[str, str]  # workload key -> program path
    gbench: Optional[str]
    out: str
    started: float

    @property
    def ref_name(self):
        """The preload workloads' reference column: hakmem if it is there, else glibc, else the first."""
        names = [v.name for v in self.allocators]
        return next((n for n in (HAKMEM, "glibc") if n in names), names[0])

    def columns(self, w):
        return w.variants if w.kind == "heap" else self.allocators

    def ref_of(self, w):
        """The column the workload's ratios are to."""
        return self.ref_name if w.kind == "preload" else w.variants[0].name

    def run_count(self):
        return sum(len(w.cases) * len(self.columns(w)) for w in self.workloads) * self.reps


# ---------------------------------------------------------------------------------------------------------------
# The plan

def prepare(data, mode, opts):
    """The Bench for these options; raises SetupError if the run cannot start."""
    started = time.monotonic()
    allocs, notes = find_allocators(opts.override, opts.extra, opts.allocators)
    launcher = find_launcher(opts, notes)
    if not allocs:
        raise SetupError("no allocator selected")
    workloads = select_workloads(data.workloads(mode.name), opts)
    programs = {w.key: program_path(w, opts) for w in workloads}
    check_programs(programs.values())
    gbench = opts.gbench if opts.gbench and (not opts.only or MICRO_KEY in opts.only) else None
    return Bench(mode, opts.reps or mode.reps, opts.timeout or mode.timeout, launcher, allocs, notes, workloads,
                 programs, gbench, opts.out, started)


def find_launcher(opts, notes):
    launcher = os.path.abspath(opts.launcher or os.path.join(opts.bin_dir, "bench_launch"))
    if os.access(launcher, os.X_OK):
        return launcher
    notes.append("bench_launch not found: peak RSS includes the runner's own (Python forks the programs)")
    return None


def select_workloads(workloads, opts):
    """The --only workloads; without hakmem among --allocators, no heap workloads (they run hakmem's API)."""
    if opts.only:
        unknown = [k for k in opts.only if k not in [w.key for w in workloads] + [MICRO_KEY]]
        if unknown:
            raise SetupError("unknown workload(s) %s" % ", ".join(unknown))
        workloads = [w for w in workloads if w.key in opts.only]
    if opts.allocators is not None and HAKMEM not in opts.allocators:
        workloads = [w for w in workloads if w.kind != "heap"]
    return workloads


def program_path(w, opts):
    if w.kind == "heap" and opts.heap_request:
        return os.path.abspath(opts.heap_request)
    return os.path.abspath(os.path.join(opts.bin_dir, w.program))


def check_programs(paths):
    for p in paths:
        if not os.access(p, os.X_OK):
            raise SetupError("missing program %s (build the benchmarks first)" % p)


def announce(bench):
    ncases = sum(len(w.cases) for w in bench.workloads)
    print("hakmem benchmarks (%s): %d workloads, %d cases, %d runs (%d repetitions); allocators: %s" %
          (bench.mode.name, len(bench.workloads), ncases, bench.run_count(), bench.reps,
           ", ".join("%s%s" % (v.name, " (%s)" % v.preload if v.preload else "") for v in bench.allocators)),
          flush=True)
    for n in bench.notes:
        print("  note: " + n, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# The runs

def run(bench):
    """Runs everything the Bench lists; returns the Results."""
    results = Results(empty_cells(bench), started=bench.started, load_start=loadavg(), source=source_version())
    announce(bench)
    run_repetitions(bench, results)
    if bench.gbench:
        print("micro_gbench (Google Benchmark, min_time %s s) ..." % bench.mode.gbench_min_time, flush=True)
        results.micro = run_gbench(bench)
    return results


def empty_cells(bench):
    return {(w.key, case.label, v.name): Cell() for w in bench.workloads for case in w.cases
            for v in bench.columns(w)}


def rotated(columns, k):
    k %= len(columns)
    return columns[k:] + columns[:k]


def run_repetitions(bench, results):
    done, total = 0, bench.run_count()
    for rep in range(bench.reps):
        for w in bench.workloads:
            for ci, case in enumerate(w.cases):
                parts = [run_cell(bench, results, w, case, v, rep) for v in rotated(bench.columns(w), rep + ci)]
                done += len(parts)
                print("[%3.0f%% %5.1fs] rep %d/%d %s / %s: %s" %
                      (100.0 * done / total, time.monotonic() - bench.started, rep + 1, bench.reps, w.key,
                       case.label, "  ".join(parts)), flush=True)


def run_cell(bench, results, w, case, v, rep):
    """One run of a case under a column (a case that timed out is not run again); returns its progress text."""
    cell = results.cell(w.key, case.label, v.name)
    r = cell.timed_out_run()
    if r is None:
        r = run_one([bench.programs[w.key]] + case.args + v.args, v.preload, bench.timeout, bench.launcher)
        r["cmd"] = repro_command(bench.programs[w.key], case.args, v)
    cell.runs.append(r)
    results.log.append(Run(w.key, case.label, v.name, rep + 1, r))
    return "%s %s" % (v.name, fmt_time(r["seconds"]) if r["status"] == "ok" else r["status"])


def repro_command(prog, args, variant):
    pre = "LD_PRELOAD=%s " % variant.preload if variant.preload else ""
    return pre + " ".join(shlex.quote(x) for x in [prog] + args + variant.args)


# ---------------------------------------------------------------------------------------------------------------
# Google Benchmark

def run_gbench(bench):
    """Runs micro_gbench with the mode's min_time; its JSON output is kept in the output folder."""
    jpath = os.path.join(bench.out, "micro_gbench.json")
    cmd = [bench.gbench, "--benchmark_min_time=%s" % bench.mode.gbench_min_time, "--benchmark_out=%s" % jpath,
           "--benchmark_out_format=json", "--benchmark_format=csv"]
    r = run_one(cmd, None, bench.timeout, bench.launcher)
    micro = Micro(cmd, bench.mode.gbench_min_time)
    if r["status"] not in ("ok", "NO-RESULT"):  # Google Benchmark prints no RESULT line
        micro.status = r["status"]
        return micro
    try:
        with open(jpath) as f:
            micro.ns = ns_per_op(json.load(f))
    except (OSError, ValueError) as e:
        micro.error = "could not read %s: %s" % (jpath, e)
    return micro


def ns_per_op(data):
    """Benchmark name -> ns per operation (from items_per_second when reported, else real time)."""
    ns = {}
    for b in data.get("benchmarks", []):
        unit = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}.get(b.get("time_unit", "ns"), 1.0)
        t = b["real_time"] * unit
        if "items_per_second" in b and b["items_per_second"]:
            t = 1e9 / b["items_per_second"]
        ns[b["name"]] = t
    return ns

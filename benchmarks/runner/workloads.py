# SPDX-License-Identifier: MIT
"""Reads benchmarks/workloads.json: the settings of each mode, the workloads with their cases for one mode, and
the goals the report checks. Format: docs/BENCHMARKS.md, "How the runner is organised; adding a workload"."""
import json
import os
import shlex
from dataclasses import dataclass, field
from typing import List, NamedTuple, Optional

DATA_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "workloads.json")
KINDS = ("preload", "heap")


class DataError(Exception):
    """workloads.json is malformed or lacks a value this mode needs."""


@dataclass
class Mode:
    name: str
    reps: int
    timeout: float
    gbench_min_time: str


@dataclass
class Variant:
    """One column of a table: an allocator (LD_PRELOAD library or none) or a variant of a heap workload."""
    name: str
    preload: Optional[str] = None
    args: List[str] = field(default_factory=list)
    counts_as: Optional[str] = None  # the allocator this column stands for in the goals (default: its name)

    def __post_init__(self):
        self.counts_as = self.counts_as or self.name


class Case(NamedTuple):
    label: str
    args: List[str]


@dataclass
class Workload:
    key: str
    title: str
    description: str
    program: str
    kind: str  # "preload": under every allocator; "heap": hakmem's API, one column per variant
    cases: List[Case]
    variants: List[Variant] = field(default_factory=list)


def text(value):
    """A text field: one string, or a list of strings joined by spaces (to keep the file's lines short)."""
    return " ".join(value) if isinstance(value, list) else value


def per_mode(value, mode):
    """A value given once or per mode ({"quick": ..., "full": ..., "smoke": ...}); None if not for this mode."""
    return value.get(mode) if isinstance(value, dict) else value


def substitute(template, params, what):
    try:
        return template.format(**params)
    except KeyError as e:
        raise DataError("%s: param %s has no value in this mode" % (what, e)) from None


class BenchData:
    """The parsed data file."""

    def __init__(self, raw):
        self.raw = raw
        self.mode_names = list(raw["modes"])

    @classmethod
    def load(cls, path=DATA_FILE):
        try:
            with open(path) as f:
                return cls(json.load(f))
        except (OSError, ValueError) as e:
            raise DataError("%s: %s" % (path, e)) from None

    def mode(self, name):
        m = self.raw["modes"][name]
        return Mode(name, int(m["reps"]), float(m["timeout"]), str(m["gbench_min_time"]))

    def workloads(self, mode):
        """Every workload that has cases in this mode, with the cases and arguments of this mode."""
        out = [load_workload(w, mode) for w in self.raw["workloads"]]
        return [w for w in out if w.cases]

    def goals(self):
        return self.raw.get("goals", [])


def load_workload(raw, mode):
    key = raw["key"]
    if raw.get("kind", "preload") not in KINDS:
        raise DataError("workload %s: kind must be one of %s" % (key, ", ".join(KINDS)))
    params = mode_params(raw.get("params", {}), mode)
    cases = [load_case(c, mode, params, key) for c in raw["cases"] if mode in c.get("modes", [mode])]
    variants = [Variant(v["name"], None, shlex.split(v.get("args", "")), v.get("counts_as"))
                for v in raw.get("variants", [])]
    return Workload(key, raw["title"], substitute(text(raw["description"]), params, key), raw["program"],
                    raw.get("kind", "preload"), cases, variants)


def mode_params(raw, mode):
    """The params that have a value in this mode, as strings."""
    values = {name: per_mode(v, mode) for name, v in raw.items()}
    return {name: str(v) for name, v in values.items() if v is not None}


def load_case(raw, mode, params, key):
    what = "workload %s, case %s" % (key, raw["label"])
    params = dict(params, **mode_params(raw.get("params", {}), mode))
    return Case(raw["label"], shlex.split(substitute(raw["args"], params, what)))

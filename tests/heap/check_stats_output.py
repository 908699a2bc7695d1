#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks hak_stats_print output of stats_print (see stats_print.c).

usage: check_stats_output.py <stats_print> json|json-heap|text|exit|exit-off|peak

The JSON schema is documented in docs/API.md ("Statistics output").
"""
import json
import os
import re
import subprocess
import sys

KEYS = {"name", "heaps", "live_blocks", "live_bytes", "peak_live_bytes", "reserved_bytes", "committed_bytes",
        "cached_bytes", "large_blocks", "large_bytes", "held_bytes", "peak_held_bytes", "limit_bytes", "events",
        "classes"}
HEAP_EVENTS = ["alloc_slow", "free_slow", "remote_frees", "spans_carved", "spans_released", "superslabs_mapped",
               "superslabs_reused", "superslabs_adopted", "large_allocs", "large_frees", "bigcache_hits",
               "bigcache_misses"]
PROCESS_EVENTS = ["superslabs_purged", "bigcache_trims", "mmap_calls", "munmap_calls", "mremap_calls",
                  "madvise_calls"]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def run(prog, mode, show_stats=None):
    env = dict(os.environ)
    env.pop("HAKMEM_SHOW_STATS", None)
    if show_stats is not None:
        env["HAKMEM_SHOW_STATS"] = show_stats
    r = subprocess.run([prog, mode], env=env, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        fail(f"{prog} {mode} exited with {r.returncode}; stderr:\n{r.stderr}")
    expect = None
    for line in r.stderr.splitlines():
        if line.startswith("expect "):
            expect = json.loads(line[len("expect "):])
    if expect is None:
        fail("no expect line on stderr:\n" + r.stderr)
    return r.stdout, r.stderr, expect


def parse_json(out):
    try:
        d = json.loads(out)
    except json.JSONDecodeError as ex:
        fail(f"stats JSON does not parse: {ex}\n{out}")
    if set(d) != KEYS:
        fail(f"keys {sorted(d)} != {sorted(KEYS)}")
    for k in KEYS - {"name", "classes", "events"}:
        if not isinstance(d[k], int) or d[k] < 0:
            fail(f"{k} is not a non-negative integer: {d[k]!r}")
    ev = d["events"]
    if list(ev) != HEAP_EVENTS + PROCESS_EVENTS:
        fail(f"event keys {list(ev)} != {HEAP_EVENTS + PROCESS_EVENTS}")
    for k, v in ev.items():
        if not isinstance(v, int) or v < 0:
            fail(f"event {k} is not a non-negative integer: {v!r}")
    if not (d["cached_bytes"] <= d["committed_bytes"] <= d["reserved_bytes"]):
        fail("not cached <= committed <= reserved: %r" % d)
    if d["committed_bytes"] < d["live_bytes"] or d["peak_live_bytes"] < d["live_bytes"]:
        fail("committed or peak below live bytes: %r" % d)
    if d["held_bytes"] < d["live_bytes"] or d["peak_held_bytes"] < d["held_bytes"]:
        fail("held below live bytes, or peak held below held: %r" % d)
    cl = d["classes"]
    if not isinstance(cl, list) or not 8 < len(cl) <= 64:
        fail(f"classes: {cl!r}")
    sizes = []
    for c in cl:
        if set(c) != {"block_size", "live_blocks", "slabs"}:
            fail(f"class entry keys {sorted(c)}")
        sizes.append(c["block_size"])
    if sizes != sorted(set(sizes)) or sizes[0] != 16 or sizes[-1] != 256 * 1024:
        fail(f"class sizes {sizes}")
    if sum(c["live_blocks"] for c in cl) + d["large_blocks"] != d["live_blocks"]:
        fail("class live blocks + large blocks != live_blocks")
    return d, {c["block_size"]: c for c in cl}


def check_json(prog):
    out, _, e = run(prog, "json")
    d, by_size = parse_json(out)
    if d["name"] != "process":
        fail(f"name {d['name']!r}")
    for k in ("heaps", "live_blocks", "live_bytes", "large_blocks", "large_bytes"):
        if d[k] != e[k]:
            fail(f"{k} = {d[k]}, expected {e[k]}")
    for k, v in e.items():
        if k.startswith("class_"):
            bs = int(k[len("class_"):])
            if bs not in by_size or by_size[bs]["live_blocks"] != v or by_size[bs]["slabs"] < 1:
                fail(f"class {bs}: {by_size.get(bs)}, expected {v} live blocks")
    # events of the known set: 3 large blocks (none freed), two heaps' spans, from fresh SuperSlabs
    ev = d["events"]
    if ev["large_allocs"] != 3 or ev["large_frees"] != 0 or ev["bigcache_hits"] + ev["bigcache_misses"] != 3:
        fail(f"large-block events {ev}, expected 3 allocated, 0 freed, 3 BigCache hits + misses")
    if ev["spans_carved"] < 2 or ev["alloc_slow"] < ev["spans_carved"] or ev["superslabs_mapped"] < 2:
        fail(f"slab events {ev}: expected >= 2 spans carved (two classes), as many slow allocations, "
             "two SuperSlabs (two heaps)")
    if ev["mmap_calls"] < ev["superslabs_mapped"] + ev["bigcache_misses"]:
        fail(f"mmap calls {ev['mmap_calls']} below the SuperSlabs and large blocks mapped: {ev}")
    print(f"ok: {len(by_size)} classes, live_blocks {d['live_blocks']}, live_bytes {d['live_bytes']}, "
          f"{sum(ev.values())} events")


def check_json_heap(prog):
    out, _, e = run(prog, "json-heap")
    d, by_size = parse_json(out)
    if d["name"] != e["heap_name"]:
        fail(f"name {d['name']!r}, expected {e['heap_name']!r}")
    expect = {"heaps": 1, "live_blocks": e["heap_live_blocks"], "live_bytes": e["heap_live_bytes"],
              "large_blocks": 0, "large_bytes": 0, "limit_bytes": e["heap_limit"]}
    for k, v in expect.items():
        if d[k] != v:
            fail(f"{k} = {d[k]}, expected {v}")
    for k, v in e.items():
        if k.startswith("class_") and v == 10:
            bs = int(k[len("class_"):])
            if by_size[bs]["live_blocks"] != 10:
                fail(f"class {bs}: {by_size[bs]}, expected 10 live blocks")
    ev = d["events"]
    for k in PROCESS_EVENTS:
        if ev[k] != 0:
            fail(f"process-wide event {k} = {ev[k]} in a heap's statistics (expected 0)")
    if ev["spans_carved"] != 1 or ev["superslabs_mapped"] + ev["superslabs_reused"] != 1 or ev["large_allocs"]:
        fail(f"heap events {ev}: expected one span from one SuperSlab, no large block")
    print(f"ok: heap {d['name']!r}: live_blocks {d['live_blocks']}, live_bytes {d['live_bytes']}")


def check_text_block(text, e, what):
    m = re.search(r"hakmem stats \(process\): heaps (\d+)", text)
    if not m:
        fail(f"{what}: no 'hakmem stats (process): heaps N' line:\n{text}")
    if int(m.group(1)) != e["heaps"]:
        fail(f"{what}: heaps {m.group(1)}, expected {e['heaps']}")
    m = re.search(r"live\s+(\d+) blocks, (\d+) bytes", text)
    if not m or int(m.group(1)) != e["live_blocks"] or int(m.group(2)) != e["live_bytes"]:
        fail(f"{what}: live line wrong, expected {e['live_blocks']} blocks, {e['live_bytes']} bytes:\n{text}")
    m = re.search(r"large\s+(\d+) blocks, (\d+) bytes", text)
    if not m or int(m.group(1)) != e["large_blocks"] or int(m.group(2)) != e["large_bytes"]:
        fail(f"{what}: large line wrong:\n{text}")
    if not re.search(r"class\s+112 B: 100 live blocks in \d+ spans", text):
        fail(f"{what}: no line for the 112-byte class with 100 live blocks:\n{text}")


def check_text(prog):
    out, _, e = run(prog, "text")
    check_text_block(out, e, "text mode")
    print("ok: text")


def check_exit(prog, on):
    _, err, e = run(prog, "exit", "1" if on else None)
    if on:
        if "hakmem stats" not in err:
            fail("HAKMEM_SHOW_STATS=1: no 'hakmem stats' on stderr:\n" + err)
        check_text_block(err, e, "HAKMEM_SHOW_STATS=1")
        print("ok: statistics at exit")
    else:
        if "hakmem stats" in err:
            fail("statistics printed at exit without HAKMEM_SHOW_STATS:\n" + err)
        _, err0, _ = run(prog, "exit", "0")
        if "hakmem stats" in err0:
            fail("statistics printed at exit with HAKMEM_SHOW_STATS=0:\n" + err0)
        print("ok: nothing at exit without HAKMEM_SHOW_STATS")


def check_peak(prog):
    """HAKMEM_SHOW_STATS=1 after 72 MB were live and freed: the peak held at exit is at least 72 MB."""
    _, err, e = run(prog, "peak", "1")
    m = re.search(r"held\s+(\d+) bytes, peak (\d+)", err)
    if not m:
        fail("HAKMEM_SHOW_STATS=1: no 'held N bytes, peak P' line:\n" + err)
    held, peak = int(m.group(1)), int(m.group(2))
    if peak < e["peak_held_min"]:
        fail(f"peak held {peak} < {e['peak_held_min']} bytes that were live:\n{err}")
    if held >= peak:
        fail(f"held {held} not below the peak {peak} after everything was freed:\n{err}")
    print(f"ok: peak held {peak} >= {e['peak_held_min']}")


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    prog, mode = sys.argv[1], sys.argv[2]
    if mode == "json":
        check_json(prog)
    elif mode == "json-heap":
        check_json_heap(prog)
    elif mode == "text":
        check_text(prog)
    elif mode == "exit":
        check_exit(prog, True)
    elif mode == "exit-off":
        check_exit(prog, False)
    elif mode == "peak":
        check_peak(prog)
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()

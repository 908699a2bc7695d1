# SPDX-License-Identifier: MIT
"""Finds the allocators to compare: hakmem (the override library), glibc (nothing preloaded), the installed
peers, and any --with NAME=LIB.so."""
import glob
import os
import subprocess

from .workloads import Variant

HAKMEM = "hakmem"
LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/local/lib", "/usr/lib64", "/usr/lib"]
PEERS = [  # name, library file patterns in order of preference
    ("mimalloc", ["libmimalloc.so.2", "libmimalloc.so.*", "libmimalloc.so"]),
    ("jemalloc", ["libjemalloc.so.2", "libjemalloc.so"]),
    ("tcmalloc", ["libtcmalloc_minimal.so.4", "libtcmalloc.so.4"]),
]


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


def hakmem_variant(override, notes):
    lib = os.path.abspath(override) if override else None
    if lib and os.path.exists(lib) and preload_works(lib):
        return [Variant(HAKMEM, lib)]
    notes.append("hakmem: override library not found or not loadable (%s); ratios are to glibc" % override)
    return []


def peer_variants(notes):
    found = []
    for name, pats in PEERS:
        lib = find_lib(pats)
        if lib and preload_works(lib):
            found.append(Variant(name, lib))
        else:
            notes.append("%s: not installed (looked for %s)" % (name, ", ".join(pats)))
    return found


def find_allocators(override, extra, wanted):
    """Returns (allocators in table order, notes on the missing ones). extra: NAME=LIB.so strings; wanted: the
    names to keep (None or empty: all)."""
    notes = []
    found = hakmem_variant(override, notes) + [Variant("glibc")] + peer_variants(notes)
    for spec in extra or []:
        name, _, lib = spec.partition("=")
        found.append(Variant(name, os.path.abspath(lib)))
    if wanted:
        found = [v for v in found if v.name in wanted]
    return found, notes

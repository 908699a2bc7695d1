#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpus of fuzz_api (tests/fuzz/corpus/): small inputs that reach every operation and tier.

The input format (fuzz_api.c): byte 0 chooses the cleanup order (bit 0: destroy the heaps first); then
operations, each an opcode byte (taken modulo OP_COUNT) and its arguments. Missing bytes read as 0.
  size     4 bytes: mode, then a 24-bit little-endian value v. mode % 8: 0 -> v % 129; 1, 2 -> v % 8193;
           3 -> 8193 + v % (256 KiB - 8 KiB); 4 -> 256 KiB + 1 + v % (4 MiB - 256 KiB); 5 -> a tier edge +-2;
           6 -> 1 << (v % 23); 7 -> 16 * (1 + v % 512)
  heap     1 byte: slot = b % 5 (0: the default heap, passed as NULL if b & 0x80; an empty slot means 0)
  block    1 byte: index b % (live blocks), in allocation order
  align    1 byte: k = b % 32: k < 19 -> 16 << k; 19..22 -> 1 << (k - 19); 23..27 -> 16 << (b >> 5);
           28..31 -> not a power of two (EINVAL expected)
Operations (opcode: arguments):
  0 alloc: size                 1 calloc: count byte, size      2 realloc: block, resize
  3 realloc(NULL): heap, size   4 aligned: align, size          5 free: block
  6 usable_size: block          7 heap_create: slot byte s (slot 1 + s % 4, name s >> 6: 0 NULL, 1 long,
    2-3 generated), v (v % 4 == 0: opts NULL; limit index ((v >> 2) & 15) % 12; v & 0x80: + u16 * 4 KiB)
  8 heap_alloc: heap, size      9 heap_calloc: heap, count, size  10 heap_realloc: block, resize
  11 heap_aligned: heap, align, size    12 heap_destroy: slot - 1   13 stats: which (% 6 - 1: -1 process,
    0 default, else slot), v (v % 4 == 3: + u16, a shorter size field)
  14 stats_print: json bit      15 collect: force bit           16 heap_of: block (b % 8 == 7: a foreign one)
  17 rewrite: block             18 burst_alloc: heap, count - 1, size   19 burst_free: mode, count - 1, at
  20 errors: kind, huge size index, heap/block   21 check_all
  count (calloc): b % 16 == 15: an overflowing pair; else a count from a table, swapped with the size if b & 0x80
  resize: kind byte (0-2 a new size, 3 +d, 4 -d, 5 half, 6 double + 1, 7 zero; d = size % 256) and a size
Usage: make_corpus.py [output dir]   (default: corpus/ next to this script; existing files are replaced)
"""
import os
import sys

(ALLOC, CALLOC, REALLOC, REALLOC_NULL, ALIGNED, FREE, USABLE, HEAP_CREATE, HEAP_ALLOC, HEAP_CALLOC,
 HEAP_REALLOC, HEAP_ALIGNED, HEAP_DESTROY, STATS, STATS_PRINT, COLLECT, HEAP_OF, REWRITE, BURST_ALLOC,
 BURST_FREE, ERRORS, CHECK_ALL) = range(22)

KIB, MIB = 1 << 10, 1 << 20
TINY_MAX, SLAB_MAX, LARGE_CAP = 8 * KIB, 256 * KIB, 4 * MIB
LIMITS = [0, 64 * KIB, 128 * KIB, 256 * KIB, 512 * KIB, 1 * MIB, 2 * MIB, 3 * MIB, 4 * MIB, 8 * MIB, 16 * MIB,
          64 * MIB]


def v24(v):
    return bytes([v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF])


def size(n):
    """The size spec that gives exactly n bytes (n <= 4 MiB)."""
    if n <= 128:
        return bytes([0]) + v24(n)
    if n <= TINY_MAX:
        return bytes([1]) + v24(n)
    if n <= SLAB_MAX:
        return bytes([3]) + v24(n - TINY_MAX - 1)
    assert n <= LARGE_CAP
    return bytes([4]) + v24(n - SLAB_MAX - 1)


def align(a):
    """The byte for alignment a (a power of two 1 .. 4 MiB), or for a bad one ('bad', index)."""
    if isinstance(a, tuple):
        return 28 + (a[1] << 5)
    k = a.bit_length() - 1
    return k - 4 if a >= 16 else 19 + k


def op(code, *args):
    out = bytes([code])
    for a in args:
        out += a if isinstance(a, bytes) else bytes([a])
    return out


def alloc(n):
    return op(ALLOC, size(n))


def heap_alloc(slot, n):
    return op(HEAP_ALLOC, slot, size(n))


def calloc(n, c=0, heap=None):
    """calloc of about n bytes; c picks the count (fuzz_api's table), heap a slot (hak_heap_calloc)."""
    if heap is None:
        return op(CALLOC, c, size(n))
    return op(HEAP_CALLOC, heap, c, size(n))


def realloc(block, kind, n=0, heap=False):
    """kind: 0 any size n, 3 +(n % 256), 4 -(n % 256), 5 half, 6 double + 1, 7 to 0."""
    return op(HEAP_REALLOC if heap else REALLOC, block, kind, size(n))


def create(slot, limit_index=0, extra=None, name=2):
    """Heap in slot 1..4; limit LIMITS[limit_index] (+ extra * 4 KiB); name 0 NULL, 1 long, 2 generated."""
    s = (slot - 1) | (name << 6)
    v = 1 | (limit_index << 2) | (0x80 if extra is not None else 0)
    args = [s, v] + ([bytes([extra & 0xFF, extra >> 8])] if extra is not None else [])
    return op(HEAP_CREATE, *args)


def create_no_opts(slot):
    return op(HEAP_CREATE, slot - 1, 0)


def burst_free(mode, count, at=0):
    """mode 0: the newest, 1: the oldest, 2: every other one from position at; count 1 .. 64."""
    return op(BURST_FREE, mode, count - 1, at)


def stats(which, partial=None):
    """which: 0 the process, 1 the default heap, 2.. slot which - 1; partial: a shorter size field."""
    if partial is None:
        return op(STATS, which, 0)
    return op(STATS, which, 3, bytes([partial & 0xFF, partial >> 8]))


def seeds():
    s = {}
    tiny = [0, 1, 15, 16, 17, 24, 48, 100, 128, 129, 500, 1000, 1024, 2000, 4096, 8000, 8191, 8192]
    pool = [8193, 9000, 16384, 40000, 65535, 65536, 100000, 200000, 262143, 262144]
    large = [262145, 300000, MIB, 2 * MIB - 64, 2 * MIB, 3 * MIB, 4 * MIB - 64, 4 * MIB]

    s["alloc_tiny"] = b"\0" + b"".join(alloc(n) for n in tiny) + op(USABLE, 3) + op(FREE, 0) + op(FREE, 5)
    s["alloc_pool"] = b"\0" + b"".join(alloc(n) for n in pool) + op(USABLE, 2) + op(FREE, 1)
    s["alloc_large"] = b"\0" + b"".join(alloc(n) for n in large) + op(USABLE, 4) + op(FREE, 2)
    s["alloc_modes"] = b"\0" + b"".join(op(ALLOC, bytes([m]) + v24(v)) for m in range(8)
                                         for v in (0, 5, 1000, 123456))
    s["free_orders"] = (b"\0" + b"".join(alloc(n) for n in tiny[:10]) + op(FREE, 0) + op(FREE, 3) +
                        op(FREE, 255) + op(FREE, 1))
    s["free_null"] = b"\0" + op(FREE, 0) + op(USABLE, 0) + alloc(10) + op(FREE, 0) + op(FREE, 0)
    for name, sizes in (("tiny", tiny), ("pool", pool), ("large", large)):
        s["calloc_" + name] = b"\0" + b"".join(calloc(n, c=i % 13) for i, n in enumerate(sizes))
    s["calloc_swapped"] = b"\0" + b"".join(calloc(n, c=0x80 | c) for n, c in ((1000, 3), (100000, 5), (MIB, 9)))
    s["calloc_overflow"] = b"\0" + b"".join(calloc(100, c=15 | (k << 4)) for k in range(5))
    s["calloc_reuse"] = (b"\0" + alloc(1000) + op(FREE, 0) + calloc(1000) + alloc(500000) + op(FREE, 1) +
                         calloc(500000) + alloc(100000) + op(FREE, 2) + calloc(100000))
    s["realloc_grow"] = b"\0" + alloc(1) + b"".join(realloc(0, 0, n) for n in [16, 100, 8192, 8193, 70000,
                                                                                262144, 262145, MIB, 4 * MIB])
    s["realloc_shrink"] = b"\0" + alloc(4 * MIB) + b"".join(realloc(0, 0, n) for n in [3 * MIB, MIB, 262145,
                                                                                        262144, 9000, 8192, 100,
                                                                                        1])
    s["realloc_steps"] = (b"\0" + alloc(8000) + b"".join(realloc(0, k, 200) for k in (3, 3, 3, 4, 5, 6, 6)) +
                          alloc(300000) + b"".join(realloc(1, k, 100) for k in (3, 4, 5, 6)))
    s["realloc_zero"] = b"\0" + b"".join(alloc(n) + realloc(0, 7) + op(FREE, 0) for n in (1, 100, 8193,
                                                                                           262145, 3 * MIB))
    s["realloc_null"] = (b"\0" + op(REALLOC_NULL, 0x40, size(100)) + op(REALLOC_NULL, 0, size(100000)) +
                         create(1) + op(REALLOC_NULL, 1, size(300000)) + op(REALLOC_NULL, 1, size(50)))
    s["aligned_all"] = b"\0" + b"".join(op(ALIGNED, align(1 << k), size(n)) for k in range(23)
                                         for n in (1, 5000) if (1 << k) <= 4 * MIB)
    s["aligned_small_sizes"] = b"\0" + b"".join(op(ALIGNED, align(a), size(0)) for a in (16, 64, 4096, 65536,
                                                                                           MIB))
    s["aligned_realloc"] = (b"\0" + op(ALIGNED, align(4096), size(3000)) + realloc(0, 3, 10) + realloc(0, 0,
                                                                                                      9000) +
                            op(ALIGNED, align(MIB), size(300000)) + realloc(1, 5) + op(USABLE, 1))
    s["aligned_bad"] = b"\0" + b"".join(op(ALIGNED, align(("bad", i)), size(100)) for i in range(8))
    s["heap_create_plain"] = (b"\0" + create_no_opts(1) + heap_alloc(1, 100) + heap_alloc(1, 100000) +
                              heap_alloc(1, MIB) + stats(2) + op(HEAP_DESTROY, 0))
    s["heap_names"] = (b"\0" + create(1, name=0) + create(2, name=1) + create(3, name=2) + create(4, 3, 7, 2) +
                       stats(2) + stats(3) + stats(4) + stats(5) + stats(0))
    for li in (1, 2, 4, 5, 7, 9):
        s["heap_limit_%d" % li] = (b"\0" + create(1, li) +
                                   op(BURST_ALLOC, 1, 63, size(60000)) + op(BURST_ALLOC, 1, 63, size(100)) +
                                   heap_alloc(1, 600000) + stats(2) + burst_free(0, 21) + heap_alloc(1, MIB))
    s["heap_limit_realloc"] = (b"\0" + create(2, 5) + heap_alloc(2, 300000) + realloc(0, 0, 900000, heap=True) +
                               realloc(0, 0, 2 * MIB, heap=True) + realloc(0, 5, heap=True) + stats(3))
    s["heap_ops"] = (b"\0" + create(1) + heap_alloc(1, 24) + calloc(5000, 3, heap=1) +
                     op(HEAP_ALIGNED, 1, align(8192), size(100)) + op(HEAP_ALIGNED, 1, align(2 * MIB), size(10)) +
                     realloc(0, 0, 20000, heap=True) + op(HEAP_OF, 1) + op(HEAP_OF, 2) + op(USABLE, 3) +
                     op(FREE, 1) + stats(2))
    s["heap_destroy_live"] = (b"\x01" + create(1) + create(2, 10) + heap_alloc(1, 100) + heap_alloc(2, 100) +
                              alloc(100) + heap_alloc(1, 500000) + heap_alloc(2, 50000) + op(HEAP_DESTROY, 0) +
                              op(CHECK_ALL) + heap_alloc(2, 8) + create(1) + heap_alloc(1, 77))
    s["heap_cycle"] = b"\0" + b"".join(create(1 + k % 4, k % 12) + heap_alloc(1 + k % 4, 1000 * k + 1) +
                                        op(HEAP_DESTROY, k % 4) for k in range(12))
    s["heap_default_null"] = (b"\0" + op(HEAP_ALLOC, 0x80, size(100)) + op(HEAP_ALLOC, 0, size(100)) +
                              realloc(0x80, 0, 5000, heap=True) + realloc(1, 0, 300000, heap=True) +
                              op(HEAP_ALIGNED, 0x80, align(64), size(64)))
    s["stats_all"] = (b"\0" + create(1) + alloc(10) + heap_alloc(1, 10) + stats(0) + stats(1) + stats(2) +
                      op(STATS_PRINT, 0) + op(STATS_PRINT, 1))
    s["stats_partial"] = b"\0" + alloc(10) + b"".join(stats(w, p) for w in (0, 1) for p in (0, 8, 64, 200, 65535))
    s["collect"] = (b"\0" + alloc(300000) + alloc(2 * MIB) + op(FREE, 0) + op(COLLECT, 0) + op(FREE, 0) +
                    op(COLLECT, 1) + alloc(2 * MIB) + op(COLLECT, 1) + stats(0))
    s["heap_of"] = (b"\0" + alloc(10) + alloc(10000) + alloc(400000) + op(HEAP_OF, 0) + op(HEAP_OF, 1) +
                    op(HEAP_OF, 2) + b"".join(op(HEAP_OF, 7 | (k << 3)) for k in range(4)))
    s["rewrite"] = b"\0" + alloc(3000) + alloc(700000) + op(REWRITE, 0) + op(REWRITE, 1) + realloc(0, 3, 1)
    s["burst_tiny"] = (b"\0" + op(BURST_ALLOC, 0, 63, size(16)) + op(BURST_ALLOC, 0, 63, size(16)) +
                       burst_free(2, 41, 3) + op(BURST_ALLOC, 0x40, 63, size(16)) + burst_free(1, 64))
    s["burst_slab_full"] = (b"\0" + b"".join(op(BURST_ALLOC, 0, 63, size(1024)) for _ in range(5)) +
                            burst_free(0, 64) + burst_free(1, 64) + burst_free(2, 64) + stats(1))
    s["burst_pool"] = (b"\0" + create(1) + op(BURST_ALLOC, 1, 40, size(65536)) + burst_free(2, 31, 7) +
                       op(BURST_ALLOC, 1, 20, size(200000)) + stats(2))
    s["errors"] = b"\0" + b"".join(op(ERRORS, w, v, 0) for w in range(4) for v in range(9)) + alloc(100) + \
        b"".join(op(ERRORS, 4, v, 0) for v in range(9))
    s["errors_heap"] = b"\0" + create(1, 3) + b"".join(op(ERRORS, w, v, 1) for w in (1, 2, 3) for v in (0, 4, 8))
    s["mixed"] = (b"\x01" + create(1, 0) + create(2, 6) + alloc(100) + heap_alloc(1, 9000) + heap_alloc(2, 300000) +
                  calloc(700, 4, heap=2) + realloc(1, 0, 400000) + realloc(2, 7, heap=True) +
                  op(ALIGNED, align(65536), size(70000)) + op(FREE, 0) + op(HEAP_OF, 1) + stats(3) +
                  op(COLLECT, 1) + op(HEAP_DESTROY, 0) + op(CHECK_ALL) + stats(0))
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        os.remove(os.path.join(out, f))
    total = 0
    for name, data in sorted(seeds().items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        total += len(data)
    print("%s: %d seeds, %d bytes" % (out, len(seeds()), total))


if __name__ == "__main__":
    main()

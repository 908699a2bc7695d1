# SPDX-License-Identifier: MIT
# Python workload for the override: threads build and sort large dicts and lists; prints a digest that must
# not depend on the allocator.
import hashlib
import random
import sys
import threading

N = int(sys.argv[1]) if len(sys.argv) > 1 else 60000


def work(seed, out):
    r = random.Random(seed)
    d = {}
    for i in range(N):
        k = "key-%d-%d" % (r.randrange(10**9), i)
        d[k] = [i, str(i) * (i % 7), (i, k), {"n": i}]
    items = sorted(d.items())
    lst = sorted((r.random(), str(i)) for i in range(N))
    blobs = [bytes([i % 251]) * (i % 5000) for i in range(0, N, 13)]
    h = hashlib.sha256()
    for k, v in items[::97]:
        h.update(k.encode())
        h.update(repr(v).encode())
    h.update(repr(lst[::1013]).encode())
    h.update(b"".join(blobs[::17]))
    out[seed] = (len(d), len(lst), h.hexdigest())


out = {}
threads = [threading.Thread(target=work, args=(s, out)) for s in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for seed in sorted(out):
    print(seed, *out[seed])

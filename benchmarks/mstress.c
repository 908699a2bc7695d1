/* SPDX-License-Identifier: MIT */
/* mstress: mixed lifetimes with blocks handed across threads and threads restarted, in the kind of the
 * mstress test of mimalloc-bench.
 *
 * --rounds rounds; each round starts --threads new threads and joins them, so thread start and teardown are
 * measured. A thread makes --allocs blocks (sizes mostly 8-256 B, one in 50 up to --max) and gives each a
 * lifetime: most are short (kept in a ring of 16 and freed when the ring wraps), a quarter medium (put in a
 * random slot of the thread's table of 1000, freeing the block there; the table is freed when the thread
 * ends) and one in 16 long (swapped into a random slot of a shared table of --shared slots; the block that
 * comes out, usually made by another thread or an earlier round, is freed here). One operation = one malloc
 * (and, in the steady state, one free).
 *
 * Example: mstress --threads 4 --rounds 10 --allocs 100k
 */
#include <pthread.h>
#include <stdatomic.h>

#include "bench.h"

#define RING 16
#define MEDIUM 1000

typedef struct {
    uint64_t allocs, max, seed, stream, checksum;
} worker_t;

static _Atomic(unsigned char *) *shared;
static uint64_t nshared;

static void *worker(void *arg) {
    worker_t *w = arg;
    bench_rng_t rng = bench_rng(w->seed, w->stream);
    unsigned char *ring[RING] = {0};
    unsigned char **medium = calloc(MEDIUM, sizeof *medium);
    if (!medium)
        bench_die("out of memory");
    uint64_t sum = 0;
    for (uint64_t i = 0; i < w->allocs; i++) {
        uint64_t r = bench_next(&rng);
        size_t n = (r & 0xffff) % 50 == 0 ? (size_t)bench_range_log(&rng, 257, w->max)
                                          : (size_t)bench_range(&rng, 8, 256);
        unsigned char *p = bench_malloc(n);
        p[0] = (unsigned char)i;
        p[n - 1] = (unsigned char)n;
        unsigned kind = (unsigned)((r >> 20) & 15);
        unsigned char *old;
        if (kind == 0) {
            old = atomic_exchange_explicit(&shared[(r >> 32) % nshared], p, memory_order_acq_rel);
        } else if (kind < 5) {
            uint64_t k = (r >> 32) % MEDIUM;
            old = medium[k];
            medium[k] = p;
        } else {
            old = ring[i % RING];
            ring[i % RING] = p;
        }
        if (old) {
            sum += old[0];
            free(old);
        }
    }
    for (int k = 0; k < RING; k++)
        free(ring[k]);
    for (int k = 0; k < MEDIUM; k++)
        free(medium[k]);
    free(medium);
    w->checksum = sum;
    return NULL;
}

int main(int argc, char **argv) {
    uint64_t threads = 4, rounds = 10, allocs = 100000, max = 65536, shared_slots = 10000, seed = 42;
    const bench_opt_t opts[] = {
        {"--threads", "threads per round", NULL, &threads},
        {"--rounds", "rounds (new threads each)", NULL, &rounds},
        {"--allocs", "mallocs per thread per round", NULL, &allocs},
        {"--max", "largest block size (1 in 50 is 257 B..max)", NULL, &max},
        {"--shared", "slots of the table shared by all threads and rounds", NULL, &shared_slots},
        {"--seed", "RNG seed", NULL, &seed},
    };
    bench_parse(argc, argv, "mstress-style mixed lifetimes, cross-thread handoff, restarted threads", opts,
                sizeof opts / sizeof opts[0]);
    if (!threads || !rounds || !allocs || !shared_slots || max < 257)
        bench_die("bad parameters");

    nshared = shared_slots;
    shared = calloc(nshared, sizeof *shared);
    worker_t *ws = calloc(threads, sizeof *ws);
    pthread_t *tids = calloc(threads, sizeof *tids);
    if (!shared || !ws || !tids)
        bench_die("out of memory");
    uint64_t checksum = 0;
    double t0 = bench_now();
    for (uint64_t round = 0; round < rounds; round++) {
        for (uint64_t t = 0; t < threads; t++) {
            ws[t] = (worker_t){allocs, max, seed, round * threads + t, 0};
            if (pthread_create(&tids[t], NULL, worker, &ws[t]))
                bench_die("pthread_create failed");
        }
        for (uint64_t t = 0; t < threads; t++) {
            pthread_join(tids[t], NULL);
            checksum += ws[t].checksum;
        }
    }
    double secs = bench_now() - t0;
    for (uint64_t k = 0; k < nshared; k++)
        free(atomic_load(&shared[k]));
    free(shared);
    free(ws);
    free(tids);
    char extra[64];
    snprintf(extra, sizeof extra, "threads=%llu rounds=%llu", (unsigned long long)threads,
             (unsigned long long)rounds);
    bench_result("mstress", threads * rounds * allocs, secs, checksum, extra);
    return 0;
}

/* SPDX-License-Identifier: MIT */
/* alloc_test: many threads allocating and freeing a size distribution, keeping some blocks, in the kind of
 * the alloc-test of mimalloc-bench.
 *
 * Each thread runs --ops operations on its own table of --live slots. Sizes follow a skewed distribution:
 * most requests are small (16-128 B), a tenth medium (up to 1 KiB) and a hundredth larger (up to --max).
 * An operation picks a random slot; a full slot is freed (and, with probability one in --keep, the new block
 * is allocated into it again at once: a block "kept"), an empty one gets a new block. So the table stays
 * about half full and lifetimes vary. One operation = one malloc or free.
 *
 * Example: alloc_test --threads 4 --ops 2M
 */
#include <pthread.h>

#include "bench.h"

typedef struct {
    uint64_t ops, live, max, keep, seed, id, checksum;
} worker_t;

static size_t draw_size(bench_rng_t *r, uint64_t max) {
    uint64_t u = bench_next(r) % 100;
    if (u == 0)
        return (size_t)bench_range_log(r, 1024, max);
    if (u < 10)
        return (size_t)bench_range(r, 129, 1024);
    return (size_t)bench_range(r, 16, 128);
}

static void *worker(void *arg) {
    worker_t *w = arg;
    bench_rng_t rng = bench_rng(w->seed, w->id);
    unsigned char **slots = calloc(w->live, sizeof *slots);
    if (!slots)
        bench_die("out of memory");
    uint64_t sum = 0, done = 0;
    while (done < w->ops) {
        uint64_t k = bench_range(&rng, 0, w->live - 1);
        if (slots[k]) {
            sum += slots[k][0];
            free(slots[k]);
            slots[k] = NULL;
            done++;
            if (bench_next(&rng) % w->keep)
                continue;
        }
        size_t n = draw_size(&rng, w->max);
        unsigned char *p = bench_malloc(n);
        p[0] = (unsigned char)n;
        p[n - 1] = (unsigned char)k;
        slots[k] = p;
        done++;
    }
    for (uint64_t k = 0; k < w->live; k++)
        free(slots[k]);
    free(slots);
    w->checksum = sum;
    return NULL;
}

int main(int argc, char **argv) {
    uint64_t threads = 4, ops = 2000000, live = 2000, max = 16384, keep = 4, seed = 42;
    const bench_opt_t opts[] = {
        {"--threads", "threads", NULL, &threads},
        {"--ops", "total mallocs + frees over all threads", NULL, &ops},
        {"--live", "slots per thread (about half are full)", NULL, &live},
        {"--max", "largest block size (1 in 100 requests is 1 KiB..max)", NULL, &max},
        {"--keep", "after a free, 1 in keep times the slot is refilled at once", NULL, &keep},
        {"--seed", "RNG seed", NULL, &seed},
    };
    bench_parse(argc, argv, "alloc-test-style threads over a skewed size distribution", opts,
                sizeof opts / sizeof opts[0]);
    if (!threads || !live || !keep || max < 1024)
        bench_die("bad parameters");

    worker_t *ws = calloc(threads, sizeof *ws);
    pthread_t *tids = calloc(threads, sizeof *tids);
    if (!ws || !tids)
        bench_die("out of memory");
    double t0 = bench_now();
    for (uint64_t t = 0; t < threads; t++) {
        ws[t] = (worker_t){ops / threads, live, max, keep, seed, t, 0};
        if (pthread_create(&tids[t], NULL, worker, &ws[t]))
            bench_die("pthread_create failed");
    }
    for (uint64_t t = 0; t < threads; t++)
        pthread_join(tids[t], NULL);
    double secs = bench_now() - t0;
    uint64_t checksum = 0;
    for (uint64_t t = 0; t < threads; t++)
        checksum += ws[t].checksum;
    free(ws);
    free(tids);
    char extra[64];
    snprintf(extra, sizeof extra, "threads=%llu", (unsigned long long)threads);
    bench_result("alloc_test", (ops / threads) * threads, secs, checksum, extra);
    return 0;
}

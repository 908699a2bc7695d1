/* SPDX-License-Identifier: MIT */
/* rptest: per-thread loops over a configurable size distribution with cross-thread frees, in the kind of
 * rpmalloc's benchmark.
 *
 * Each of --threads threads runs --loops loops. A loop first frees the blocks other threads handed it, then
 * mallocs --batch blocks with sizes drawn from --dist over [--min, --max] (uniform: every size equally
 * likely; log: every doubling equally likely; small: log-uniform but three in four requests below 128 B),
 * writes each, frees them in a shuffled order except one in --cross of them, which it pushes onto the next
 * thread's handoff stack (the next thread frees them: cross-thread frees). One operation = one malloc + one
 * free.
 *
 * Example: rptest --threads 2 --dist small --max 8192 --loops 400
 */
#include <pthread.h>
#include <stdatomic.h>

#include "bench.h"

typedef struct block {
    struct block *next;
} block_t;

typedef struct {
    _Alignas(64) _Atomic(block_t *) inbox;
    uint64_t id, checksum;
    pthread_t tid;
} worker_t;

static worker_t *workers;
static uint64_t nthreads, loops, batch, min_size, max_size, cross, seed;
static int dist; /* 0 uniform, 1 log, 2 small */

static size_t draw(bench_rng_t *r) {
    if (dist == 0)
        return (size_t)bench_range(r, min_size, max_size);
    if (dist == 2 && bench_next(r) % 4)
        return (size_t)bench_range_log(r, min_size, max_size < 128 ? max_size : 128);
    return (size_t)bench_range_log(r, min_size, max_size);
}

static uint64_t drain(worker_t *w) {
    uint64_t sum = 0;
    block_t *b = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
    while (b) {
        block_t *next = b->next;
        sum += ((unsigned char *)b)[sizeof *b];
        free(b);
        b = next;
    }
    return sum;
}

static void *worker(void *arg) {
    worker_t *w = arg;
    worker_t *to = &workers[(w->id + 1) % nthreads];
    bench_rng_t rng = bench_rng(seed, w->id);
    unsigned char **blocks = bench_malloc(batch * sizeof *blocks);
    uint64_t sum = 0;
    for (uint64_t l = 0; l < loops; l++) {
        sum += drain(w);
        for (uint64_t i = 0; i < batch; i++) {
            size_t n = draw(&rng);
            unsigned char *p = bench_malloc(n);
            p[sizeof(block_t)] = (unsigned char)i;
            p[n - 1] = (unsigned char)l;
            blocks[i] = p;
        }
        for (uint64_t i = batch; i > 1; i--) { /* shuffle: frees in another order than the mallocs */
            uint64_t j = bench_range(&rng, 0, i - 1);
            unsigned char *t = blocks[i - 1];
            blocks[i - 1] = blocks[j];
            blocks[j] = t;
        }
        for (uint64_t i = 0; i < batch; i++) {
            if (nthreads > 1 && i % cross == 0) {
                block_t *b = (block_t *)blocks[i];
                b->next = atomic_load_explicit(&to->inbox, memory_order_relaxed);
                while (!atomic_compare_exchange_weak_explicit(&to->inbox, &b->next, b, memory_order_release,
                                                              memory_order_relaxed)) {
                }
            } else {
                sum += blocks[i][sizeof(block_t)];
                free(blocks[i]);
            }
        }
    }
    free(blocks);
    w->checksum = sum;
    return NULL;
}

int main(int argc, char **argv) {
    const char *dist_name = "small";
    uint64_t threads = 2;
    loops = 400, batch = 1000, min_size = 16, max_size = 8192, cross = 8, seed = 42;
    const bench_opt_t opts[] = {
        {"--threads", "threads", NULL, &threads},
        {"--loops", "loops per thread", NULL, &loops},
        {"--batch", "blocks malloc'd per loop", NULL, &batch},
        {"--dist", "size distribution: uniform, log or small", &dist_name, NULL},
        {"--min", "smallest block size (at least 16)", NULL, &min_size},
        {"--max", "largest block size", NULL, &max_size},
        {"--cross", "one in cross blocks is freed by the next thread", NULL, &cross},
        {"--seed", "RNG seed", NULL, &seed},
    };
    bench_parse(argc, argv, "rptest-style size distributions with cross-thread frees", opts,
                sizeof opts / sizeof opts[0]);
    dist = !strcmp(dist_name, "uniform") ? 0
           : !strcmp(dist_name, "log")   ? 1
           : !strcmp(dist_name, "small") ? 2
                                         : -1;
    if (dist < 0 || !threads || !loops || !batch || !cross || min_size < 16 || max_size < min_size)
        bench_die("bad parameters");
    nthreads = threads;

    workers = aligned_alloc(64, ((threads * sizeof *workers + 63) / 64) * 64);
    if (!workers)
        bench_die("out of memory");
    memset(workers, 0, threads * sizeof *workers);
    double t0 = bench_now();
    for (uint64_t t = 0; t < threads; t++) {
        workers[t].id = t;
        if (pthread_create(&workers[t].tid, NULL, worker, &workers[t]))
            bench_die("pthread_create failed");
    }
    for (uint64_t t = 0; t < threads; t++)
        pthread_join(workers[t].tid, NULL);
    uint64_t checksum = 0;
    for (uint64_t t = 0; t < threads; t++)
        checksum += workers[t].checksum + drain(&workers[t]);
    double secs = bench_now() - t0;
    free(workers);
    char extra[96];
    snprintf(extra, sizeof extra, "threads=%llu dist=%s", (unsigned long long)threads, dist_name);
    bench_result("rptest", threads * loops * batch, secs, checksum, extra);
    return 0;
}

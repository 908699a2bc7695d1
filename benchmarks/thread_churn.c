/* SPDX-License-Identifier: MIT */
/* thread_churn: many short-lived threads that allocate, hand some blocks on, and exit.
 *
 * --threads threads are started in total, at most --concurrency at a time (a sliding window: thread i is
 * joined before thread i + concurrency starts). Each thread first frees the blocks an earlier thread handed on
 * (taken from a shared mailbox), then allocates --blocks blocks of random size in [--min, --max] and writes
 * them, frees all but --handoff of them, puts those in the mailbox for a later thread, and exits. Thread
 * creation and exit (the allocator's per-thread setup and teardown) are inside the measurement.
 * One operation = one block allocated (and, later, freed).
 *
 * Example: thread_churn --threads 2000 --concurrency 4
 */
#include <pthread.h>

#include "bench.h"

typedef struct handoff_s {
    struct handoff_s *next;
    uint64_t n;
    void *blocks[];
} handoff_t;

static pthread_mutex_t mailbox_lock = PTHREAD_MUTEX_INITIALIZER;
static handoff_t *mailbox;
static uint64_t g_blocks, g_handoff, g_min, g_max, g_seed;

static void *worker(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg, sum = 0;
    bench_rng_t rng = bench_rng(g_seed, id);
    pthread_mutex_lock(&mailbox_lock);
    handoff_t *h = mailbox;
    if (h) mailbox = h->next;
    pthread_mutex_unlock(&mailbox_lock);
    if (h) {
        for (uint64_t i = 0; i < h->n; i++) {
            sum += ((unsigned char *)h->blocks[i])[0];
            free(h->blocks[i]);
        }
        free(h);
    }
    void **mine = bench_malloc(g_blocks * sizeof *mine);
    for (uint64_t i = 0; i < g_blocks; i++) {
        size_t n = bench_range(&rng, g_min, g_max);
        unsigned char *p = bench_malloc(n);
        p[0] = (unsigned char)i;
        p[n - 1] = (unsigned char)id;
        mine[i] = p;
    }
    uint64_t keep = g_handoff < g_blocks ? g_handoff : g_blocks;
    handoff_t *out = bench_malloc(sizeof *out + keep * sizeof(void *));
    out->n = keep;
    /* Hand on every (blocks/keep)-th block, free the rest: the handed blocks are scattered over the slabs. */
    uint64_t stride = keep ? g_blocks / keep : 0, k = 0;
    for (uint64_t i = 0; i < g_blocks; i++) {
        if (k < keep && i % stride == 0) out->blocks[k++] = mine[i];
        else free(mine[i]);
    }
    free(mine);
    pthread_mutex_lock(&mailbox_lock);
    out->next = mailbox;
    mailbox = out;
    pthread_mutex_unlock(&mailbox_lock);
    return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv) {
    uint64_t threads = 2000, concurrency = 4, blocks = 500, handoff = 100, min = 16, max = 2048, seed = 42;
    const bench_opt_t opts[] = {
        {"--threads", "threads started in total", NULL, &threads},
        {"--concurrency", "threads alive at once", NULL, &concurrency},
        {"--blocks", "blocks allocated by each thread", NULL, &blocks},
        {"--handoff", "of which handed on to a later thread", NULL, &handoff},
        {"--min", "smallest block size", NULL, &min},
        {"--max", "largest block size", NULL, &max},
        {"--seed", "RNG seed", NULL, &seed},
    };
    bench_parse(argc, argv, "short-lived threads allocate, hand some blocks on, and exit", opts,
                sizeof opts / sizeof opts[0]);
    if (!threads || !concurrency || !blocks || !min || max < min) bench_die("bad parameters");
    g_blocks = blocks;
    g_handoff = handoff;
    g_min = min;
    g_max = max;
    g_seed = seed;
    pthread_t *tid = bench_malloc(concurrency * sizeof *tid);
    uint64_t checksum = 0;

    double t0 = bench_now();
    for (uint64_t i = 0; i < threads + concurrency; i++) {
        pthread_t *slot = &tid[i % concurrency];
        if (i >= concurrency) {
            void *r;
            pthread_join(*slot, &r);
            checksum += (uint64_t)(uintptr_t)r;
        }
        if (i < threads && pthread_create(slot, NULL, worker, (void *)(uintptr_t)i)) bench_die("pthread_create failed");
    }
    double secs = bench_now() - t0;

    while (mailbox) {
        handoff_t *h = mailbox;
        mailbox = h->next;
        for (uint64_t i = 0; i < h->n; i++) free(h->blocks[i]);
        free(h);
    }
    free(tid);
    char extra[96];
    snprintf(extra, sizeof extra, "concurrency=%llu", (unsigned long long)concurrency);
    bench_result("thread_churn", threads * blocks, secs, checksum, extra);
    return 0;
}

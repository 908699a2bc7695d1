/* SPDX-License-Identifier: MIT */
/* larson: a server simulation in the style of Larson and Krishnan's benchmark.
 *
 * T chains run at once. A chain owns an array of --blocks blocks of random size in [--min, --max] (filled by
 * the main thread before the clock starts). Each chain runs --rounds rounds, each on a new thread: the thread
 * repeatedly picks a random slot, frees its block and puts a new one there (writing its first and last byte).
 * At the end of its round the thread starts its successor and exits; the successor first joins it and then
 * works on the same array, so blocks are freed by threads that did not allocate them, and every thread's
 * exit (the allocator's thread teardown) is inside the measurement. One operation = one free + one malloc;
 * --ops is the total over all threads.
 *
 * Example: larson --threads 4 --ops 4M
 */
#include <pthread.h>

#include "bench.h"

typedef struct {
    void **blocks;
    uint64_t nblocks, ops_per_round, rounds_left, min, max, checksum;
    bench_rng_t rng;
    pthread_t prev, last;
    int has_prev;
} chain_t;

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static uint64_t done_chains;

static void *round_thread(void *arg) {
    chain_t *c = arg;
    if (c->has_prev) pthread_join(c->prev, NULL);
    uint64_t sum = c->checksum;
    for (uint64_t i = 0; i < c->ops_per_round; i++) {
        uint64_t r = bench_next(&c->rng);
        uint64_t k = (uint64_t)(((unsigned __int128)r * c->nblocks) >> 64);
        unsigned char *old = c->blocks[k];
        sum += old[0];
        free(old);
        size_t n = c->min + (size_t)((r & 0xffffffffu) % (c->max - c->min + 1));
        unsigned char *p = bench_malloc(n);
        p[0] = (unsigned char)i;
        p[n - 1] = (unsigned char)k;
        c->blocks[k] = p;
    }
    c->checksum = sum;
    if (--c->rounds_left > 0) {
        c->prev = pthread_self();
        c->has_prev = 1;
        pthread_t next;
        if (pthread_create(&next, NULL, round_thread, c)) bench_die("pthread_create failed");
    } else {
        pthread_mutex_lock(&done_lock);
        c->last = pthread_self();
        done_chains++;
        pthread_cond_signal(&done_cond);
        pthread_mutex_unlock(&done_lock);
    }
    return NULL;
}

int main(int argc, char **argv) {
    uint64_t threads = 4, ops = 4000000, blocks = 1000, rounds = 10, min = 8, max = 1000, seed = 42;
    const bench_opt_t opts[] = {
        {"--threads", "concurrent threads (chains)", NULL, &threads},
        {"--ops", "total block replacements (free + malloc) over all threads", NULL, &ops},
        {"--blocks", "blocks per thread's array", NULL, &blocks},
        {"--rounds", "thread generations per chain", NULL, &rounds},
        {"--min", "smallest block size", NULL, &min},
        {"--max", "largest block size", NULL, &max},
        {"--seed", "RNG seed", NULL, &seed},
    };
    bench_parse(argc, argv, "larson-style server simulation with cross-thread frees", opts,
                sizeof opts / sizeof opts[0]);
    if (!threads || !blocks || !rounds || !min || max < min) bench_die("bad parameters");

    chain_t *chains = calloc(threads, sizeof *chains);
    if (!chains) bench_die("out of memory");
    uint64_t per_round = ops / (threads * rounds);
    if (!per_round) per_round = 1;
    for (uint64_t t = 0; t < threads; t++) {
        chain_t *c = &chains[t];
        c->blocks = bench_malloc(blocks * sizeof *c->blocks);
        c->nblocks = blocks;
        c->ops_per_round = per_round;
        c->rounds_left = rounds;
        c->min = min;
        c->max = max;
        c->rng = bench_rng(seed, t);
        for (uint64_t k = 0; k < blocks; k++) {
            size_t n = bench_range(&c->rng, min, max);
            unsigned char *p = bench_malloc(n);
            p[0] = (unsigned char)k;
            c->blocks[k] = p;
        }
    }

    double t0 = bench_now();
    for (uint64_t t = 0; t < threads; t++) {
        pthread_t tid;
        if (pthread_create(&tid, NULL, round_thread, &chains[t])) bench_die("pthread_create failed");
    }
    pthread_mutex_lock(&done_lock);
    while (done_chains < threads) pthread_cond_wait(&done_cond, &done_lock);
    pthread_mutex_unlock(&done_lock);
    for (uint64_t t = 0; t < threads; t++) pthread_join(chains[t].last, NULL);
    double secs = bench_now() - t0;

    uint64_t checksum = 0;
    for (uint64_t t = 0; t < threads; t++) {
        checksum += chains[t].checksum;
        for (uint64_t k = 0; k < blocks; k++) free(chains[t].blocks[k]);
        free(chains[t].blocks);
    }
    free(chains);
    char extra[96];
    snprintf(extra, sizeof extra, "threads=%llu rounds=%llu", (unsigned long long)threads, (unsigned long long)rounds);
    bench_result("larson", per_round * threads * rounds, secs, checksum, extra);
    return 0;
}
